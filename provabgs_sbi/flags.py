"""Every flag bit the package sets, in one place.

Two independent bit sets:

- **catalog flags** (``PhotometryCatalog.flags``): why a catalog row cannot be turned into
  an observation vector x, set when the catalog is read;
- **fit flags** (the ``flags`` column of a posterior file, ``Posterior.flags``): how a
  galaxy's posterior was obtained and checked.

Test a bit with ``(flags & BIT) != 0``; the named masks below say which combinations mean
what, so no module writes a bare number.
"""
from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- catalog flags
#: Flux not finite (NaN/inf) in at least one band.
FLAG_FLUX_NONFINITE = 1 << 0
#: Inverse variance <= 0 or not finite in at least one band (no usable error).
FLAG_IVAR_BAD = 1 << 1
#: Finite flux <= 0 in at least one band (magnitude undefined).
FLAG_FLUX_NONPOSITIVE = 1 << 2
#: Redshift not finite or at or below
#: :data:`~provabgs_sbi.model.observation.Z_MIN` (no usable distance).
FLAG_Z_BAD = 1 << 3
#: Redshift finite and above ``Z_MIN`` but outside the ``z_range`` the catalog was read with.
FLAG_Z_OUT_OF_RANGE = 1 << 4
#: Catalog bit -> short name, in bit order.
CATALOG_FLAG_NAMES = {
    FLAG_FLUX_NONFINITE: "flux_nonfinite",
    FLAG_IVAR_BAD: "ivar_bad",
    FLAG_FLUX_NONPOSITIVE: "flux_nonpositive",
    FLAG_Z_BAD: "z_bad",
    FLAG_Z_OUT_OF_RANGE: "z_out_of_range",
}
#: Catalog flags that make a row impossible to convert to x (its x row is NaN).
FLAGS_UNCONVERTIBLE = FLAG_FLUX_NONFINITE | FLAG_IVAR_BAD | FLAG_FLUX_NONPOSITIVE | FLAG_Z_BAD

# ---------------------------------------------------------------- fit flags
#: The redshift in x is not a finite number.
FLAG_INVALID_X = 1 << 0
#: Redshift outside the range the posterior was trained on or <= 0; in catalog fits also
#: at or below :data:`~provabgs_sbi.model.observation.Z_MIN`.
FLAG_Z_RANGE = 1 << 1
#: A magnitude outside the training set's range.
FLAG_MAG_RANGE = 1 << 2
#: A magnitude error above the noise model's range at that magnitude.
FLAG_SIGMA_HIGH = 1 << 3
#: The flow returned no finite draw inside the prior.
FLAG_FLOW_FAILED = 1 << 4
#: Posterior predictive check: best-draw chi^2 above
#: :data:`provabgs_sbi.inference.ppc.CHI2_POOR_FIT`.
FLAG_POOR_FIT = 1 << 5
#: A band is missing: its magnitude or error is not a finite number, the error is <= 0,
#: or the catalog held a sentinel (-99, 99, -9999, ...) or a flux <= 0 there
#: (:meth:`provabgs_sbi.model.observation.XLayout.missing`). On its own it only says so: a
#: posterior trained with band masks fits the galaxy with the bands it has.
FLAG_MISSING_BAND = 1 << 6
#: The galaxy has samples but the posterior predictive check could not be computed
#: (the model gave no finite chi^2 for any checked draw).
FLAG_CHECK_FAILED = 1 << 7
#: Fewer bands present than the posterior needs (``Posterior.min_bands``; all of them for
#: a posterior trained without band masks): no samples.
FLAG_TOO_FEW_BANDS = 1 << 8
#: Fit bit -> short name, in bit order.
FIT_FLAG_NAMES = {FLAG_INVALID_X: "invalid_x", FLAG_Z_RANGE: "z_outside_trained_range",
                  FLAG_MAG_RANGE: "mag_outside_training_range",
                  FLAG_SIGMA_HIGH: "sigma_above_noise_model",
                  FLAG_FLOW_FAILED: "flow_overflow_no_samples",
                  FLAG_POOR_FIT: "poor_fit_chi2",
                  FLAG_MISSING_BAND: "missing_band",
                  FLAG_CHECK_FAILED: "check_not_computed",
                  FLAG_TOO_FEW_BANDS: "too_few_bands"}
#: Fit flags for which no samples are drawn (NaN instead).
NO_SAMPLES = FLAG_INVALID_X | FLAG_Z_RANGE | FLAG_TOO_FEW_BANDS
#: Fit flags of galaxies without posterior samples, whatever the reason.
NOT_SAMPLED = NO_SAMPLES | FLAG_FLOW_FAILED


def has_samples(flags) -> np.ndarray:
    """Whether each galaxy got posterior samples, from its fit flags (N,) -> bool (N,)."""
    return (np.asarray(flags) & NOT_SAMPLED) == 0


def count_flags(flags, names: dict[int, str] = FIT_FLAG_NAMES) -> dict[str, int]:
    """Number of rows (of ``flags``, shape (N,)) carrying each named bit, in bit order."""
    flags = np.asarray(flags)
    return {name: int(np.count_nonzero(flags & bit)) for bit, name in names.items()}
