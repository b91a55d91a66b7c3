"""The main job behind ``provabgs-sbi run`` (the README's first command).

It grows with the project; today it builds the default (bc03) SSP table, synthesises
example galaxies from the prior with the SED model, prints their ugriz photometry and
draws an example spectrum.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def run_main_job(out="out") -> int:
    from .photometry import BANDS, nanomaggies_to_mag
    from .plots import plot_sed
    from .priors import Prior
    from .sed_model import SEDModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = SEDModel("bc03")
    print(f"[1/2] bc03 SSP table ready ({len(model.wave)} rest wavelengths, "
          f"{time.perf_counter() - t0:.1f} s)")
    prior = Prior()
    theta = prior.sample(10_000, seed=0)
    z = np.random.default_rng(0).uniform(0.01, 0.2, len(theta))
    t0 = time.perf_counter()
    flux = model.photometry(theta, z)
    dt = time.perf_counter() - t0
    mags = nanomaggies_to_mag(flux)
    print(f"[2/2] ugriz of {len(theta)} prior galaxies at 0.01 < z < 0.2 in {dt:.2f} s "
          f"({len(theta) / dt:,.0f} SEDs/s)")
    print("      median AB mag: " + "  ".join(f"{b}={m:.2f}" for b, m in
                                             zip(BANDS, np.median(mags, axis=0))))
    wave, lum = model.spectrum(theta[:1], z[:1])
    plot_sed(wave, lum[0], z[0], flux[0], out / "example_sed.png",
             title=f"prior draw 0 at z = {z[0]:.3f}")
    print(f"      wrote {out / 'example_sed.png'}")
    return 0
