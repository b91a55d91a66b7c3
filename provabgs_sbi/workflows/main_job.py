"""The main job behind ``provabgs-sbi run`` (the README's first command).

1. Build (once) and load the bc03 SSP table; load the default posterior
   (:data:`provabgs_sbi.io.paths.DEFAULT_FLOW`) and the committed emulator its training set
   was made with (their manifests are verified).
2. Fetch (once, checksum verified) the 10,000-galaxy SDSS sample shipped in the kcorrect
   5.1.9 wheel (or its first ``limit`` galaxies, for a quick try).
3. Fit every galaxy with the amortized posterior (1,000 samples each by default) and
   write ``out/sdss_posteriors.h5`` (samples, derived properties, per-galaxy summaries,
   flags; galaxies outside the trained redshift range are kept, flagged and not sampled),
   with the posterior predictive check (best chi^2 of 32 posterior draws, one emulator
   call per chunk) stored and flagged.
4. Draw a summary figure ``out/sdss_summary.png`` and an example spectrum.
"""
from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi.emulator import Emulator
from provabgs_sbi.flags import has_samples
from provabgs_sbi.inference.posterior import Posterior, emulator_of
from provabgs_sbi.io.catalog import load_sdss_sample
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.sed_model import SEDModel
from provabgs_sbi.plots.catalog import plot_sdss_summary
from provabgs_sbi.plots.sed import plot_sed
from provabgs_sbi.workflows.fit import fit_catalog


def run_main_job(out="out", n_samples: int = 1000, flow_dir=None, emulator_dir=None,
                 limit: int | None = None, overwrite: bool = False) -> int:
    """Run the main job (see the module docstring) and print one line per step.

    Parameters
    ----------
    out : path-like
        Output folder (created).
    n_samples : int
        Posterior samples per galaxy.
    flow_dir : path-like, optional
        Posterior folder; default :data:`~provabgs_sbi.io.paths.DEFAULT_FLOW`.
    emulator_dir : path-like, optional
        Emulator of the posterior predictive check and the example spectrum; default the
        committed emulator the posterior's training set was made with.
    limit : int, optional
        Fit only the first ``limit`` galaxies of the sample (all when None). Draws are
        seeded per chunk of 200 galaxies (:func:`~provabgs_sbi.workflows.fit.fit_catalog`),
        so a limit that is a multiple of 200 gives the first rows of a full run exactly.
    overwrite : bool
        Replace an existing ``out/sdss_posteriors.h5`` made with other settings (a rerun with
        the same settings reuses the finished file without it).

    Returns
    -------
    int
        0 (the exit status of ``provabgs-sbi run``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flow_dir = Path(flow_dir or DEFAULT_FLOW)
    emulator_dir = Path(emulator_dir or emulator_of(flow_dir))
    t0 = time.perf_counter()
    model = SEDModel("bc03")
    emu = Emulator.load(emulator_dir)
    post = Posterior.load(flow_dir)
    print(f"[1/4] bc03 SSP table, emulator {emulator_dir.name} and posterior {flow_dir.name} "
          f"loaded and verified ({time.perf_counter() - t0:.1f} s)")
    cat = load_sdss_sample(z_range=tuple(post.z_range))
    size = f"{len(cat):,} galaxies"
    if limit is not None and limit < len(cat):
        cat = cat.subset(np.arange(limit))
        size = f"the first {len(cat):,} of {size}"
    print(f"[2/4] SDSS sample: {size}; {int(cat.valid.sum()):,} valid and inside the "
          f"trained redshift range {post.z_range}")
    t0 = time.perf_counter()
    path = fit_catalog(post, cat, out / "sdss_posteriors.h5", n_samples=n_samples,
                       derived_model=model, model=emu, overwrite=overwrite)
    dt = time.perf_counter() - t0
    with h5py.File(path, "r") as fh:
        flags = fh["summary"]["flags"]
    sampled = has_samples(flags)
    n_fit = int(np.count_nonzero(sampled))
    print(f"[3/4] {n_fit:,} posteriors x {n_samples} samples in {dt:.0f} s "
          f"({dt / max(n_fit, 1) * 1e3:.1f} ms per galaxy, derived properties included) -> {path}")
    print(f"      flags: {post.describe_flags(flags)}")
    plot_sdss_summary(path, out / "sdss_summary.png")
    if n_fit == 0:
        print(f"[4/4] wrote {out / 'sdss_summary.png'}; no galaxy was sampled, so no example "
              "spectrum")
        return 0
    first = int(np.nonzero(sampled)[0][0])
    theta = post.sample(cat.to_x()[first:first + 1], 1, seed=0)[0]
    z0 = float(cat.z[first])
    wave, lum = emu.spectrum(theta, z0)
    plot_sed(wave, lum[0], z0, emu.photometry(theta, z0)[0], out / "example_sed.png",
             title=f"a posterior draw for SDSS galaxy {cat.ids[first]}")
    print(f"[4/4] wrote {out / 'sdss_summary.png'} and {out / 'example_sed.png'}")
    return 0
