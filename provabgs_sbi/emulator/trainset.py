"""Training spectra for the emulator: chunked, seeded, resumable HDF5.

Each row is one NMF-only, unit-mass galaxy without diffuse dust (fburst = 0, log M = 0,
tau_ISM = 0; diffuse dust is applied analytically by the emulator): the 7 network inputs
and ln L_lambda per Msun formed on the emulator's wavelength grid, from the direct
:class:`~provabgs_sbi.model.sed_model.SEDModel`. Inputs are drawn uniformly over the prior box
(u1..u3 uniform, so both priors are covered evenly) and z ~ U(z_min, z_max). Optionally a
fraction of the draws has beta1 = 1 - u1 log-uniform in [1e-5, 1] instead: the default
(flat Dirichlet) prior puts 27% of its galaxies at beta1 < 0.1, where the spectrum changes
fastest, but uniform u1 puts only 10% there.

Chunk k is drawn from ``numpy.random.default_rng([seed, k])``, so an interrupted run
continues where it stopped and produces exactly the rows an uninterrupted run would.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.model import cosmology
from provabgs_sbi.model.parameters import from_warped
from provabgs_sbi.model.priors import HIGH, LOW
from provabgs_sbi.emulator.inputs import nmf_inputs
from provabgs_sbi.io.h5store import commit, open_store

CHUNK = 5000


#: Range of log10 beta1 of the extra draws at small beta1.
LOG_BETA1_RANGE = (-5.0, 0.0)


def draw_nmf_parameters(n: int, rng, z_range, small_beta1_fraction: float = 0.0
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Physical parameters (n, 12) of unit-mass, burst-free, ISM-dust-free galaxies and
    redshifts (n,).

    ``small_beta1_fraction`` of the rows (each row independently) get log10 beta1 ~
    U(-5, 0) instead of u1 ~ U(0, 1). With 0 no extra random numbers are drawn, so files
    made before this option existed are reproduced exactly.
    """
    if not 0.0 <= small_beta1_fraction <= 1.0:
        raise ValueError(f"small_beta1_fraction must lie in [0, 1], got {small_beta1_fraction}")
    w = rng.uniform(LOW, HIGH, size=(n, len(LOW)))
    w[:, 0] = 0.0          # log M = 0: per Msun formed
    w[:, 4] = 0.0          # fburst = 0: the NMF part only
    w[:, 9] = 0.0          # tau_ISM = 0: diffuse dust is analytic (n_dust then irrelevant)
    w[:, 10] = 0.0
    z = rng.uniform(z_range[0], z_range[1], size=n)
    if small_beta1_fraction > 0:
        pick = rng.random(n) < small_beta1_fraction
        w[pick, 1] = 1.0 - 10.0 ** rng.uniform(*LOG_BETA1_RANGE, size=int(pick.sum()))
    return from_warped(w), z


def make_training_spectra(path, n: int, model, seed: int, z_range, progress: bool = True,
                          chunk: int = CHUNK, small_beta1_fraction: float = 0.0) -> Path:
    """Create or resume ``path`` with ``n`` rows (``inputs`` (n, 9), ``ln_lum`` (n, n_wave)).

    Parameters
    ----------
    model : SEDModel
        The direct model on the emulator's grid.
    seed : int
        Base seed; chunk k uses ``default_rng([seed, k])``.
    z_range : (float, float)
    small_beta1_fraction : float
        See :func:`draw_nmf_parameters`.

    Raises
    ------
    ValueError
        If ``path`` exists but was made with other settings.
    """
    path = Path(path)
    settings = {"n": int(n), "seed": int(seed), "z_range": [float(z_range[0]), float(z_range[1])],
                "chunk": int(chunk), "ssp_table_hash": model.ssp_hash, "n_wave": len(model.wave),
                "layout": "nmf, no ism dust, 7 inputs"}
    if small_beta1_fraction > 0:      # absent for 0, so older files still resume
        settings["small_beta1_fraction"] = float(small_beta1_fraction)
    def create(fh):
        fh.create_dataset("inputs", shape=(n, 7), dtype="f8", chunks=(min(chunk, n), 7))
        fh.create_dataset("ln_lum", shape=(n, len(model.wave)), dtype="f4",
                          chunks=(min(chunk, n), len(model.wave)))
        fh.create_dataset("wave", data=model.wave)
        fh.attrs["n_done"] = 0

    same = lambda stored, wanted: json.loads(stored) == json.loads(wanted)  # noqa: E731
    with open_store(path, settings, create, same=same) as fh:
        n_done = int(fh.attrs["n_done"])
        starts = range(n_done, n, chunk)
        if progress and len(starts):
            from provabgs_sbi.progress import progress_bar
            bar = progress_bar(total=n, initial=n_done, desc="emulator training spectra",
                               unit="SED")
        else:
            bar = None
        for s in starts:
            k = s // chunk
            m = min(chunk, n - s)
            rng = np.random.default_rng([seed, k])
            theta, z = draw_nmf_parameters(m, rng, z_range, small_beta1_fraction)
            _, lum = model.spectrum(theta, z)
            fh["inputs"][s:s + m] = nmf_inputs(theta, cosmology.age_gyr(z), "warped")
            fh["ln_lum"][s:s + m] = np.log(lum).astype(np.float32)
            commit(fh, n_done=s + m)      # only after the chunk is written
            if bar is not None:
                bar.update(m)
        if bar is not None:
            bar.close()
    return path
