"""Fit the default photometric noise model to the SDSS sample (``data/noise_model_sdss.ecsv``).

Run ``python -m provabgs_sbi.workflows.noise_fit [--out ECSV] [--figure PNG]``; it fits
:class:`~provabgs_sbi.inference.noise.NoiseModel` with the default
:class:`~provabgs_sbi.inference.noise.NoiseConfig` to the valid rows of
:func:`~provabgs_sbi.io.catalog.load_sdss_sample`, writes the ECSV file and draws
``docs/figures/noise_model.png`` (:func:`~provabgs_sbi.plots.noise.plot_noise_model`).
Rerunning it gives the same numbers; only ``created_utc`` in the file's header changes.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from provabgs_sbi.inference.noise import DEFAULT_NOISE_FILE, NoiseConfig, NoiseModel
from provabgs_sbi.io.catalog import PhotometryCatalog, load_sdss_sample
from provabgs_sbi.io.paths import artifact_root
from provabgs_sbi.plots.noise import plot_noise_model

#: Where the figure of the default model goes.
DEFAULT_NOISE_FIGURE = artifact_root() / "docs" / "figures" / "noise_model.png"


def fit_noise_model(catalog: PhotometryCatalog | None = None,
                    out: str | os.PathLike = DEFAULT_NOISE_FILE,
                    figure: str | os.PathLike | None = DEFAULT_NOISE_FIGURE,
                    config: NoiseConfig | None = None, seed: int = 0) -> NoiseModel:
    """Fit a noise model to a catalog and write it (ECSV) and, optionally, its figure.

    Parameters
    ----------
    catalog : PhotometryCatalog, optional
        Real photometry (default: the kcorrect SDSS sample, :func:`load_sdss_sample`).
    out : path-like
        ECSV file to write (default: the committed default model's file).
    figure : path-like or None
        PNG of the model against the real errors; None draws nothing.
    config : NoiseConfig, optional
        Binning and scatter settings (default ``NoiseConfig()``).
    seed : int
        Seeds the figure's draws.

    Returns
    -------
    NoiseModel
    """
    catalog = load_sdss_sample() if catalog is None else catalog
    model = NoiseModel.fit(catalog, config)
    model.save(out)
    if figure is not None:
        plot_noise_model(model, catalog, figure, rng=seed)
    return model


def main(argv=None) -> int:
    """Fit the default model to the SDSS sample and write the ECSV file and figure."""
    p = argparse.ArgumentParser(prog="python -m provabgs_sbi.workflows.noise_fit",
                                description=main.__doc__)
    p.add_argument("--out", default=str(DEFAULT_NOISE_FILE), help="ECSV file to write")
    p.add_argument("--figure", default=str(DEFAULT_NOISE_FIGURE), help="PNG to write")
    args = p.parse_args(argv)
    fit_noise_model(out=Path(args.out), figure=Path(args.figure))
    print(f"wrote {args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
