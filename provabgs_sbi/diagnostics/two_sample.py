"""One posterior against another (e.g. ANPE against MCMC for the same galaxy).

:func:`c2st` (classifier two-sample test as in sbibm, Lueckmann et al. 2021),
:func:`ks_per_parameter` (Kolmogorov-Smirnov per marginal) and :func:`marginal_agreement`
(offsets of the marginal medians in units of the reference posterior's width).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["c2st", "ks_per_parameter", "marginal_agreement"]


def _two_sets(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two sample sets as float arrays of shapes (n_a, dim) and (n_b, dim) (1-D: dim = 1)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (n, dim) arrays of the same dim, got {a.shape} and {b.shape}")
    return a, b


def c2st(a, b, seed: int = 1, n_folds: int = 5, stratified: bool = True,
         max_iter: int = 10000, n_jobs: int | None = None) -> float:
    """Classifier two-sample test accuracy (Lopez-Paz & Oquab 2017), set up as in sbibm.

    Both sets are z-scored with the mean and standard deviation (ddof=1) of ``a``; a
    scikit-learn ``MLPClassifier`` (ReLU, two hidden layers of ``10 * dim`` units, Adam,
    ``max_iter``, ``random_state=seed``) is scored by ``n_folds``-fold shuffled
    cross-validation. ``stratified=True`` keeps the two classes balanced in every fold
    (``StratifiedKFold``); ``stratified=False`` uses the plain shuffled ``KFold`` of
    sbibm 1.1.0 (identical folds in practice when the sets have equal size).

    Parameters
    ----------
    a : ndarray of shape (n_a, dim)
        Reference samples (e.g. MCMC posterior draws of one galaxy).
    b : ndarray of shape (n_b, dim)
        Samples to compare (e.g. ANPE draws of the same galaxy).
    seed : int
    n_folds : int
    stratified : bool
    max_iter : int
    n_jobs : int, optional
        Folds fitted in parallel.

    Returns
    -------
    float
        Mean held-out accuracy: 0.5 for indistinguishable sets, 1.0 for separable ones.
        Use equal sizes: the chance level is otherwise ``max(n_a, n_b) / (n_a + n_b)``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    a, b = _two_sets(a, b)
    if min(len(a), len(b)) < n_folds:
        raise ValueError(f"need at least n_folds={n_folds} samples in each set")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("c2st inputs must be finite")
    mean = a.mean(axis=0)
    std = a.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    data = np.concatenate([(a - mean) / std, (b - mean) / std])
    target = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    dim = a.shape[1]
    clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim),
                        max_iter=max_iter, solver="adam", random_state=seed)
    folds = (StratifiedKFold if stratified else KFold)(n_splits=n_folds, shuffle=True,
                                                       random_state=seed)
    # One BLAS thread per classifier: its matrices are small, and multi-threaded BLAS on a
    # busy machine made C2ST >10x slower (measured on 2 shared cores).
    with threadpool_limits(limits=1, user_api="blas"):
        scores = cross_val_score(clf, data, target, cv=folds, scoring="accuracy", n_jobs=n_jobs)
    return float(np.mean(scores))


def ks_per_parameter(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov test of each marginal (``scipy.stats.ks_2samp``).

    Parameters
    ----------
    a : ndarray of shape (n_a, d)
    b : ndarray of shape (n_b, d)

    Returns
    -------
    statistic, pvalue : ndarray of shape (d,)
        Note that posterior draws are often autocorrelated (MCMC); thin them first or
        the p-values are too small.
    """
    a, b = _two_sets(a, b)
    res = [stats.ks_2samp(a[:, j], b[:, j]) for j in range(a.shape[1])]
    return (np.array([r.statistic for r in res]), np.array([r.pvalue for r in res]))


def marginal_agreement(samples_a, samples_b) -> np.ndarray:
    """Offset of the marginal medians in units of the reference posterior's width.

    ``|median(a) - median(b)| / std(b)`` per galaxy and parameter; SEDflow's ANPE and
    MCMC posteriors agree "within 0.3 posterior standard deviations on average" (``a`` =
    ANPE, ``b`` = MCMC).

    Parameters
    ----------
    samples_a : ndarray of shape (n_gal, n_a, d) or (n_a, d)
    samples_b : ndarray of shape (n_gal, n_b, d) or (n_b, d)
        Reference posterior draws.

    Returns
    -------
    ndarray of shape (n_gal, d), or (d,) for 2-D inputs
    """
    a = np.asarray(samples_a, dtype=float)
    b = np.asarray(samples_b, dtype=float)
    single = a.ndim == 2 and b.ndim == 2
    if single:
        a, b = a[None], b[None]
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"need (n_gal, n, d) arrays with the same n_gal and d, got {a.shape} "
                         f"and {b.shape}")
    std_b = b.std(axis=1, ddof=1)
    if np.any(std_b <= 0):
        raise ValueError("samples_b has zero spread in some galaxy and parameter")
    out = np.abs(np.median(a, axis=1) - np.median(b, axis=1)) / std_b
    return out[0] if single else out
