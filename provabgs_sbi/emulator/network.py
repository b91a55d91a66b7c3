"""Speculator networks (Alsing et al. 2020): parameters -> PCA coefficients -> ln spectrum.

One :class:`SpeculatorNetwork` covers one wavelength bin. The forward pass (model-spec 3,
4) is::

    h = (x - param_shift) / param_scale
    for each hidden layer:  a = h W + b;  h = [beta + (1 - beta) sigmoid(alpha a)] a
    c = h W_out + b_out                           # standardised PCA coefficients
    ln L = ((c * pca_scale + pca_shift) @ pca_basis) * spectrum_scale + spectrum_shift

with a learnable per-unit gated activation (alpha, beta). Two evaluation paths give the
same numbers: numpy (float64, small batches) and TensorFlow (float32, any batch, GPU).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

def gated_mlp(h, layers, w_out, b_out) -> np.ndarray:
    """numpy forward pass of Speculator's MLP on standardised inputs ``h`` (N, n_param).

    ``layers`` holds (W, b, alpha, beta) of each hidden layer; returns the standardised PCA
    coefficients (N, n_pca), in the dtype of the arrays given.
    """
    for W, b, a, be in layers:
        act = h @ W + b
        h = (be + (1.0 - be) * expit(a * act)) * act
    return h @ w_out + b_out


ARRAY_FIELDS = ("param_shift", "param_scale", "pca_shift", "pca_scale", "pca_basis",
                "spectrum_shift", "spectrum_scale", "wave")


@dataclass(frozen=True, eq=False)
class SpeculatorNetwork:
    """Weights of one wavelength bin.

    Attributes
    ----------
    W, b : tuple of ndarray
        Layer weights (n_in, n_out) and biases (n_out,); the last layer is linear.
    alpha, beta : tuple of ndarray
        Gate parameters (n_hidden,) of each hidden layer.
    param_shift, param_scale : ndarray of shape (n_param,)
    pca_shift, pca_scale : ndarray of shape (n_pca,)
    pca_basis : ndarray of shape (n_pca, n_wave)
    spectrum_shift, spectrum_scale : ndarray of shape (n_wave,)
    wave : ndarray of shape (n_wave,)
        Rest wavelength, Angstrom.
    """

    W: tuple
    b: tuple
    alpha: tuple
    beta: tuple
    param_shift: np.ndarray
    param_scale: np.ndarray
    pca_shift: np.ndarray
    pca_scale: np.ndarray
    pca_basis: np.ndarray
    spectrum_shift: np.ndarray
    spectrum_scale: np.ndarray
    wave: np.ndarray

    def __post_init__(self):
        n_layers = len(self.W)
        if len(self.b) != n_layers or len(self.alpha) != n_layers - 1 or len(self.beta) != n_layers - 1:
            raise ValueError("need len(W) == len(b) == len(alpha) + 1 == len(beta) + 1")
        if self.W[0].shape[0] != len(self.param_shift):
            raise ValueError("first layer does not match the number of parameters")
        if self.W[-1].shape[1] != self.pca_basis.shape[0]:
            raise ValueError("last layer does not match the number of PCA components")
        if self.pca_basis.shape[1] != len(self.wave):
            raise ValueError("PCA basis does not match the wavelength grid")

    @property
    def n_param(self) -> int:
        return len(self.param_shift)

    def ln_spectrum(self, x) -> np.ndarray:
        """numpy float64 forward pass: (N, n_param) inputs -> (N, n_wave) ln L."""
        h = (np.asarray(x, dtype=np.float64) - self.param_shift) / self.param_scale
        c = gated_mlp(h, zip(self.W[:-1], self.b[:-1], self.alpha, self.beta),
                      self.W[-1], self.b[-1])
        return ((c * self.pca_scale + self.pca_shift) @ self.pca_basis) * self.spectrum_scale \
            + self.spectrum_shift

    def to_arrays(self, prefix: str = "") -> dict:
        """Flat dict of arrays (for .npz), keys as in Speculator's layout."""
        out = {f"{prefix}{k}": np.asarray(getattr(self, k)) for k in ARRAY_FIELDS}
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            out[f"{prefix}W{i}"] = np.asarray(W)
            out[f"{prefix}b{i}"] = np.asarray(b)
        for i, (a, be) in enumerate(zip(self.alpha, self.beta)):
            out[f"{prefix}alpha{i}"] = np.asarray(a)
            out[f"{prefix}beta{i}"] = np.asarray(be)
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> "SpeculatorNetwork":
        """Inverse of :meth:`to_arrays`; also reads the PROVABGS .npz layout (``pca_basis``)."""
        n_layers = sum(1 for k in arrays if k.startswith(f"{prefix}W") and k[len(prefix) + 1:].isdigit())
        get = lambda k: np.asarray(arrays[f"{prefix}{k}"], dtype=np.float64)  # noqa: E731
        return cls(W=tuple(get(f"W{i}") for i in range(n_layers)),
                   b=tuple(get(f"b{i}") for i in range(n_layers)),
                   alpha=tuple(get(f"alpha{i}") for i in range(n_layers - 1)),
                   beta=tuple(get(f"beta{i}") for i in range(n_layers - 1)),
                   **{k: get(k) for k in ARRAY_FIELDS})


class TFSpeculator:
    """TensorFlow float32 evaluation of a list of :class:`SpeculatorNetwork` bins.

    Built lazily (TensorFlow is imported only when this class is used).
    """

    def __init__(self, networks):
        import tensorflow as tf

        self.tf = tf
        c = lambda a: tf.constant(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.bins = []
        for net in networks:
            self.bins.append({
                "W": [c(w) for w in net.W], "b": [c(b) for b in net.b],
                "alpha": [c(a) for a in net.alpha], "beta": [c(b) for b in net.beta],
                "param_shift": c(net.param_shift), "param_scale": c(net.param_scale),
                "pca_shift": c(net.pca_shift), "pca_scale": c(net.pca_scale),
                "pca_basis": c(net.pca_basis), "spectrum_shift": c(net.spectrum_shift),
                "spectrum_scale": c(net.spectrum_scale)})
        self.ln_spectrum = tf.function(self._ln_spectrum, jit_compile=True, reduce_retracing=True)

    def _ln_spectrum(self, x):
        tf = self.tf
        outs = []
        for p in self.bins:
            h = (x - p["param_shift"]) / p["param_scale"]
            for W, b, a, be in zip(p["W"][:-1], p["b"][:-1], p["alpha"], p["beta"]):
                act = tf.matmul(h, W) + b
                h = (be + (1.0 - be) * tf.math.sigmoid(a * act)) * act
            c = tf.matmul(h, p["W"][-1]) + p["b"][-1]
            lnl = tf.matmul(c * p["pca_scale"] + p["pca_shift"], p["pca_basis"])
            outs.append(lnl * p["spectrum_scale"] + p["spectrum_shift"])
        return tf.concat(outs, axis=-1)
