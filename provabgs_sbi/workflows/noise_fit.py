"""Fit the photometric noise models of the shipped surveys to the kcorrect sample.

Run ``python -m provabgs_sbi.workflows.noise_fit [--out ECSV] [--figure PNG]``; it fits
:class:`~provabgs_sbi.inference.noise.NoiseModel` with the default
:class:`~provabgs_sbi.inference.noise.NoiseConfig` to the valid rows of
:func:`~provabgs_sbi.io.catalog.load_sdss_sample`, writes the ECSV file and draws
``docs/figures/noise_model.png`` (:func:`~provabgs_sbi.plots.noise.plot_noise_model`).
Rerunning it gives the same numbers; only ``created_utc`` in the file's header changes.

``provabgs-sbi noise fit --survey galex_sdss_2mass`` (:func:`fit_survey_noise_model`) fits
the ten-band model (FUV, NUV, ugriz, J, H, Ks) to the same rows, each band on the galaxies
that have it (:func:`~provabgs_sbi.io.kcorrect_bands.load_kcorrect_multiband`), and writes
``data/noise_model_galex_sdss_2mass.ecsv`` and its figure. Its ugriz part is the SDSS
model's, number for number.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from provabgs_sbi.inference.noise import DEFAULT_NOISE_FILE, NoiseConfig, NoiseModel
from provabgs_sbi.io.catalog import PhotometryCatalog, load_sdss_sample
from provabgs_sbi.io.paths import artifact_root
from provabgs_sbi.model.photometry import mag_error
from provabgs_sbi.model.survey import get_survey
from provabgs_sbi.plots.noise import plot_noise_arrays, plot_noise_model

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


def fit_survey_noise_model(survey, out=None, figure=None, config: NoiseConfig | None = None,
                           seed: int = 0) -> tuple[NoiseModel, Path]:
    """Fit a shipped survey's noise model to its catalog and write it and its figure.

    Parameters
    ----------
    survey : str or Survey
        A survey whose ``catalog`` preset is ``"sdss"`` (:func:`fit_noise_model`) or
        ``"kcorrect_multiband"`` (the kcorrect sample's ten bands: the valid rows of the
        SDSS sample, each band fitted on the galaxies that have it).
    out : path-like, optional
        ECSV to write (default ``data/noise_model_<survey>.ecsv``; the committed
        ``noise_model_sdss.ecsv`` for SDSS ugriz).
    figure : path-like, optional
        PNG to write (default ``docs/figures/noise_model_<survey>.png``).
    config : NoiseConfig, optional
    seed : int
        Seeds the figure's draws.

    Returns
    -------
    NoiseModel, pathlib.Path
        The model and the file written.

    Raises
    ------
    ValueError
        The survey has no catalog preset that can be read here.
    """
    survey = get_survey(survey)
    root = artifact_root()
    out = Path(out) if out else (DEFAULT_NOISE_FILE if survey.catalog == "sdss"
                                 else root / "data" / f"noise_model_{survey.name}.ecsv")
    figure = Path(figure) if figure else (DEFAULT_NOISE_FIGURE if survey.catalog == "sdss"
                                          else root / "docs" / "figures"
                                          / f"noise_model_{survey.name}.png")
    if survey.catalog == "sdss":
        return fit_noise_model(out=out, figure=figure, config=config, seed=seed), out
    if survey.catalog != "kcorrect_multiband":
        raise ValueError(f"survey {survey.name!r}: no catalog reader for preset "
                         f"{survey.catalog!r}; fit with NoiseModel.fit_arrays or build one "
                         "from a noise table (provabgs-sbi noise table)")
    from provabgs_sbi.io.kcorrect_bands import load_kcorrect_multiband

    multi = load_kcorrect_multiband()
    sdss = load_sdss_sample()
    if multi.bands != survey.bands or not np.array_equal(multi.ids, sdss.ids):
        raise ValueError(f"the kcorrect reader's bands {multi.bands} or rows do not match "
                         f"survey {survey.name!r}")
    use = sdss.valid
    with np.errstate(invalid="ignore", divide="ignore"):
        errs = np.where(multi.flux > 0, mag_error(multi.flux, 1.0 / np.sqrt(multi.ivar)), np.nan)
    mags = multi.mags()
    provenance = {"source": multi.source, "source_sha256": sdss.source_sha256,
                  "cuts": ["the SDSS sample's valid rows (flags == 0)",
                           "each band: rows with a measurement"],
                  "n_rows_catalog": int(len(multi))}
    model = NoiseModel.fit_arrays(mags[use], errs[use], survey.bands, config=config,
                                  provenance=provenance)
    model.save(out)
    plot_noise_arrays(model, mags[use], errs[use], figure, source=multi.source, rng=seed)
    return model, out


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
