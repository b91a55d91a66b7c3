"""The main job behind ``provabgs-sbi run`` (the README's first command).

1. Build (once) and load the bc03 SSP table; load the default posterior
   (:data:`provabgs_sbi.paths.DEFAULT_FLOW`) and the committed emulator its training set
   was made with (their manifests are verified).
2. Fetch (once, checksum verified) the 10,000-galaxy SDSS sample shipped in the kcorrect
   5.1.9 wheel.
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

import numpy as np

from .paths import DEFAULT_FLOW


def run_main_job(out="out", n_samples: int = 1000, flow_dir=None, emulator_dir=None) -> int:
    from .catalog import load_sdss_sample
    from .emulator import Emulator
    from .fit import fit_catalog
    from .plots import plot_sed, plot_sdss_summary
    from .posterior import Posterior, emulator_of
    from .sed_model import SEDModel

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
    print(f"[2/4] SDSS sample: {len(cat):,} galaxies; {int(cat.valid.sum()):,} valid and inside the "
          f"trained redshift range {post.z_range}")
    t0 = time.perf_counter()
    path = fit_catalog(post, cat, out / "sdss_posteriors.h5", n_samples=n_samples,
                       derived_model=model, model=emu)
    dt = time.perf_counter() - t0
    import h5py

    with h5py.File(path, "r") as fh:
        flags = fh["summary"]["flags"]
    n_fit = int(np.sum(np.isin(flags & 19, [0])))
    print(f"[3/4] {n_fit:,} posteriors x {n_samples} samples in {dt:.0f} s "
          f"({dt / max(n_fit, 1) * 1e3:.1f} ms per galaxy, derived properties included) -> {path}")
    print(f"      flags: {post.describe_flags(flags)}")
    plot_sdss_summary(path, out / "sdss_summary.png")
    first = int(np.nonzero((flags & 19) == 0)[0][0])
    theta = post.sample(cat.to_x()[first:first + 1], 1, seed=0)[0]
    z0 = float(cat.z[first])
    wave, lum = emu.spectrum(theta, z0)
    plot_sed(wave, lum[0], z0, emu.photometry(theta, z0)[0], out / "example_sed.png",
             title=f"a posterior draw for SDSS galaxy {cat.ids[first]}")
    print(f"[4/4] wrote {out / 'sdss_summary.png'} and {out / 'example_sed.png'}")
    return 0
