"""Evidence for the units of the kcorrect sample's GALEX and 2MASS columns.

Prints every number quoted in docs/guide/bands_and_units.md:

1. what the catalog writes for "missing" in each GALEX and 2MASS column;
2. the band ratios of EXTINCTION (which A/E(B-V) coefficients the catalog used);
3. NUV - u, NUV - r and FUV - NUV of blue (u - r < 2.2) and red galaxies if the GALEX
   fluxes were counts/s, microJansky or nanomaggies;
4. m_AB - m_Vega of a Vega model (Lejeune et al. 1997 ``lcbvega.ori``, shipped in the same
   kcorrect wheel, normalised as kcorrect 5.1.9's ``Response.set_vega2ab``) through
   speclite's 2MASS filters, against the adopted 0.91, 1.39, 1.85;
5. the per-band counts of :func:`provabgs_sbi.io.kcorrect_bands.load_kcorrect_multiband`.

Run: ``OMP_NUM_THREADS=1 python benchmarks/kcorrect_units.py`` (a few seconds; fetches the
kcorrect wheel once).
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
import speclite.filters
from astropy.table import Table

from provabgs_sbi.io import fetch
from provabgs_sbi.io.catalog import load_sdss_sample
from provabgs_sbi.io.kcorrect_bands import (EXTINCTION_PER_EBV, SDSS_R_SFD98,
                                            TWOMASS_VEGA_TO_AB, ebv_from_sdss_extinction,
                                            load_kcorrect_multiband)

#: Hypotheses for the GALEX flux unit: AB zero point (FUV, NUV) of m = ZP - 2.5 log10(flux).
GALEX_UNIT_HYPOTHESES = {"counts/s (18.82, 20.08)": (18.82, 20.08),
                         "microJy (23.9)": (23.9, 23.9),
                         "nanomaggies (22.5)": (22.5, 22.5)}
SF11_R = (4.239, 3.303, 2.285, 1.698, 1.263)   # Schlafly & Finkbeiner 2011, R_V = 3.1


def _q(a: np.ndarray) -> str:
    return (f"n={len(a):4d} median {np.median(a):5.2f} "
            f"(16-84%: {np.percentile(a, 16):5.2f} .. {np.percentile(a, 84):5.2f})")


def missing_census(t: Table) -> None:
    print("1. values written in each GALEX / 2MASS column (10,000 rows)")
    for b in ("NUV", "FUV"):
        f = np.asarray(t[f"{b}_FLUX_AUTO"], float)
        e = np.asarray(t[f"{b}_FLUXERR_AUTO"], float)
        print(f"   {b}: flux=err=0 {np.sum((f == 0) & (e == 0))}, flux=err=-99 "
              f"{np.sum((f == -99) & (e == -99))}, flux>0 & err>0 {np.sum((f > 0) & (e > 0))}")
    fuv = np.asarray(t["FUV_FLUX_AUTO"], float) > 0
    nuv = np.asarray(t["NUV_FLUX_AUTO"], float) > 0
    print(f"   FUV and NUV {np.sum(fuv & nuv)}, FUV only {np.sum(fuv & ~nuv)}, "
          f"NUV only {np.sum(nuv & ~fuv)}")
    for c in ("J", "H", "K"):
        m = np.asarray(t[f"{c}_M_EXT"], float)
        s = np.asarray(t[f"{c}_MSIG_EXT"], float)
        print(f"   {c}: mag=0 {np.sum(m == 0)}, mag>0 & err=0 {np.sum((m > 0) & (s == 0))}, "
              f"mag>0 & err>0 {np.sum((m > 0) & (s > 0))}, non-finite "
              f"{np.sum(~np.isfinite(m) | ~np.isfinite(s))}")


def extinction_ratios(t: Table) -> None:
    ext = np.asarray(t["EXTINCTION"], float)
    ratio = ext / ext[:, 2:3]
    print("2. EXTINCTION / EXTINCTION_r per band (min .. max over rows)")
    for j, b in enumerate("ugriz"):
        print(f"   {b}: {ratio[:, j].min():.4f} .. {ratio[:, j].max():.4f}   "
              f"SFD98 {SDSS_R_SFD98[j] / SDSS_R_SFD98[2]:.4f}   SF11 {SF11_R[j] / SF11_R[2]:.4f}")
    ebv = ebv_from_sdss_extinction(ext)
    p = np.percentile(ebv, [50, 99])
    print(f"   E(B-V) = A_r / 2.751: median {p[0]:.3f}, 99th percentile {p[1]:.3f}, max {ebv.max():.3f}")
    print("   median A_band (mag): " + ", ".join(
        f"{b} {np.median(r * ebv):.3f}" for b, r in EXTINCTION_PER_EBV.items()))


def galex_colours(t: Table) -> None:
    m = load_sdss_sample().mags()
    ebv = ebv_from_sdss_extinction(t["EXTINCTION"])
    ur = m[:, 0] - m[:, 2]
    print("3. GALEX colours (AB, extinction corrected) under each unit hypothesis")
    for name, (zf, zn) in GALEX_UNIT_HYPOTHESES.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            fuv = np.asarray(t["FUV_FLUX_AUTO"], float)
            nuv = np.asarray(t["NUV_FLUX_AUTO"], float)
            m_nuv = np.where(nuv > 0, zn - 2.5 * np.log10(nuv), np.nan) - EXTINCTION_PER_EBV["NUV"] * ebv
            m_fuv = np.where(fuv > 0, zf - 2.5 * np.log10(fuv), np.nan) - EXTINCTION_PER_EBV["FUV"] * ebv
        print(f"   if {name}:")
        for label, sel in (("blue u-r<2.2 ", ur < 2.2), ("red  u-r>=2.2", ur >= 2.2)):
            for cname, col in (("NUV-u  ", m_nuv - m[:, 0]), ("NUV-r  ", m_nuv - m[:, 2]),
                               ("FUV-NUV", m_fuv - m_nuv)):
                c = col[sel]
                print(f"     {label} {cname} {_q(c[np.isfinite(c)])}")


def vega_ab_offsets() -> dict[str, float]:
    """m_AB - m_Vega in J, H, Ks: the AB magnitude of kcorrect's Vega model (Vega = 0)."""
    text = fetch.read_wheel_member(fetch.SDSS_SAMPLE, "kcorrect/data/basel/lcbvega.ori").decode()
    words = text.split()
    n_wave = 1221
    wave = np.array(words[:n_wave], float) * 10.0                   # nm -> Angstrom
    h_nu = np.array(words[n_wave + 6:2 * n_wave + 6], float)        # Eddington flux, erg/s/cm2/Hz
    # surface F_lambda scaled by (R/d)^2 with kcorrect's R = 1.91144e11 cm, d = 7.68 pc
    f_lambda = 4 * np.pi * h_nu * 2.99792458e18 / wave**2 * (1.91144e11 / (7.68 * 3.0857e18)) ** 2
    filt = speclite.filters.load_filters("twomass-J", "twomass-H", "twomass-Ks")
    ab = filt.get_ab_magnitudes(f_lambda * u.erg / u.s / u.cm**2 / u.AA, wave * u.AA)
    return {band: float(ab[name][0]) for band, name in zip(("J", "H", "Ks"), ab.colnames)}


def vega_offsets() -> None:
    print("4. AB magnitude of the Vega model through speclite's 2MASS filters (= m_AB - m_Vega)")
    for band, value in vega_ab_offsets().items():
        print(f"   {band}: {value:.3f}   adopted {TWOMASS_VEGA_TO_AB[band]:.2f}")


def main() -> None:
    t = Table.read(fetch.fetch(fetch.SDSS_SAMPLE), hdu="GSTTEST")
    missing_census(t)
    extinction_ratios(t)
    galex_colours(t)
    vega_offsets()
    print("5. galaxies with a measurement per band:", load_kcorrect_multiband().counts())


if __name__ == "__main__":
    main()
