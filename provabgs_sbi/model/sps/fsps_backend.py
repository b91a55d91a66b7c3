"""The ``fsps`` SPS configuration: python-fsps with MIST isochrones and MILES spectra.

This reproduces PROVABGS's FSPS set-up (model-spec 1.4): Chabrier IMF (``imf_type=1``),
SSPs (``sfh=0``), the default MIST + MILES/BaSeL libraries, AGB dust on, no nebular
emission. Dust attenuation is *not* put in the table (the SED model applies it), and
dust emission is switched off (the project does not model it, model-spec 5.7).

**Unverified here.** FSPS needs its data tree (``SPS_HOME``), which cannot be obtained
on this project's build machines, so this backend has only been tested up to the point
where FSPS itself is imported. ``python-fsps`` is imported lazily, only when this
backend is used, because ``import fsps`` raises without a valid ``SPS_HOME``.
"""
from __future__ import annotations

import os

import numpy as np

from provabgs_sbi.model.sps.table import SSPTable

CONFIGURATION = {"backend": "fsps", "imf_type": 1, "isochrones": "MIST", "spectra": "MILES",
                 "add_agb_dust_model": True, "add_neb_emission": False,
                 "add_dust_emission": False, "zsun_provabgs": 0.019}

INSTALL_HINT = (
    "The fsps backend needs python-fsps and the FSPS data tree:\n"
    "  1. pip install 'provabgs-sbi[fsps]'   (python-fsps, built against MIST + MILES, the defaults)\n"
    "  2. git clone https://github.com/cconroy20/fsps $HOME/fsps\n"
    "  3. export SPS_HOME=$HOME/fsps   (the folder holding SPECTRA/, ISOCHRONES/, dust/ ...)\n"
    "Then run `provabgs-sbi sps build --backend fsps`. The default backend, bc03, needs none of this."
)


def _import_fsps():
    sps_home = os.environ.get("SPS_HOME")
    if not sps_home:
        raise RuntimeError("SPS_HOME is not set.\n" + INSTALL_HINT)
    if not os.path.isdir(os.path.join(sps_home, "SPECTRA")):
        raise RuntimeError(f"SPS_HOME={sps_home} has no SPECTRA/ folder, so it is not an FSPS "
                           "data tree.\n" + INSTALL_HINT)
    try:
        import fsps  # noqa: PLC0415  (lazy on purpose: importing fsps needs SPS_HOME)
    except ImportError as exc:
        raise RuntimeError(f"python-fsps is not importable ({exc}).\n" + INSTALL_HINT) from exc
    except Exception as exc:  # python-fsps raises plain Exceptions on a bad SPS_HOME
        raise RuntimeError(f"import fsps failed: {exc}\n" + INSTALL_HINT) from exc
    return fsps


def build_fsps_table(progress: bool = True) -> SSPTable:
    """Tabulate FSPS SSPs on FSPS's native age and metallicity grids.

    Returns
    -------
    SSPTable
        L_lambda per Msun formed at every native age (``ssp_ages``) and metallicity
        (``zlegend``); surviving mass from ``stellar_mass`` (stars plus remnants, FSPS's
        definition).
    """
    fsps = _import_fsps()
    sp = fsps.StellarPopulation(zcontinuous=0, sfh=0, imf_type=1, add_neb_emission=False,
                                add_dust_emission=False, add_agb_dust_model=True, dust_type=0,
                                dust1=0.0, dust2=0.0)
    zlegend = np.asarray(sp.zlegend, dtype=np.float64)
    lums, masses = [], []
    iterator = range(1, len(zlegend) + 1)
    if progress:
        from provabgs_sbi.progress import progress_bar
        iterator = progress_bar(iterator, desc="FSPS SSPs per metallicity")
    wave = None
    for zmet in iterator:
        sp.params["zmet"] = zmet
        wave, spec = sp.get_spectrum(tage=0.0, peraa=True)  # (n_age, n_wave), Lsun/A per Msun
        lums.append(np.asarray(spec, dtype=np.float64))
        masses.append(np.asarray(sp.stellar_mass, dtype=np.float64))
    lum = np.stack(lums, axis=1)
    lum = np.clip(lum, 0.0, None)
    return SSPTable(
        log_age=np.asarray(sp.ssp_ages, dtype=np.float64),
        metallicity=zlegend,
        wavelength=np.asarray(wave, dtype=np.float64),
        luminosity=lum,
        surviving_mass=np.stack(masses, axis=1),
        attrs={"backend": "fsps", "configuration": CONFIGURATION,
               "source": f"python-fsps {getattr(fsps, '__version__', '?')}, SPS_HOME="
                         f"{os.environ.get('SPS_HOME')}, libraries {sp.libraries}",
               "mass_definition": "stars plus remnants (FSPS stellar_mass)"},
    )
