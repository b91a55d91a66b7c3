"""Flow preconditioning of the MCMC (NeuTra; Hoffman et al. 2019).

An ensemble sampler in the 11 warped coordinates w mixes slowly on these posteriors: the
SFH weights, the metallicity history and the dust trade off along curved ridges, and zeus's
integrated autocorrelation times reach 1,000-1,400 iterations for the bc03 test galaxies.
A trained ANPE flow q(w | x) maps standard-normal noise eps to w. Sampling eps with the
density

    log p(eps | x) = log p(w(eps) | x) + log |det dw / d eps|

targets **exactly the same posterior** as sampling w (only the coordinates change, whatever
the flow), but where q is close to p the target over eps is close to a standard normal,
which an ensemble sampler mixes quickly. (On the bc03 test galaxies the gain per iteration
is real but smaller than the extra cost of an iteration: see the README.)

The map must be evaluated at every slice-sampling step, a few points at a time, and a MAF's
noise-to-parameter direction is sequential: d passes of each MADE. :class:`FlowMap` does it
in numpy with each hidden unit computed once: a MADE unit of degree k depends only on the
first k coordinates, so once those are final the unit is final too (the units are sorted by
degree and filled in blocks as the coordinates become known). One call then costs about one
MADE pass per block, not d, and runs in float64, so a point's density does not depend on
the other points of the call. :class:`FlowTarget` is the target zeus samples, and
:func:`flow_walkers` its starting walkers.
"""
from __future__ import annotations

import time

import numpy as np

from provabgs_sbi.inference.flows import ConditionalFlow
from provabgs_sbi.inference.flows.blocks import MIN_SCALE, SCALE_SHIFT
from provabgs_sbi.io.hashing import hash_arrays
from provabgs_sbi.model.observation import N_X
from provabgs_sbi.model.parameters import N_WARPED

#: Rows mapped at once when a whole chain is mapped back to w.
_CHUNK = 8192


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _gelu(a: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * a * (1.0 + erf(a / np.sqrt(2.0)))


_ACTIVATIONS = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "elu": lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0.0))),
    "gelu": _gelu,
    "silu": lambda a: a * _sigmoid(a),
    "softplus": _softplus,
    "sigmoid": _sigmoid,
}


class _Made:
    """One conditional MADE with its hidden units sorted by degree (float64).

    Parameters
    ----------
    weights : list of ndarray
        The MADE's trainable weights as :meth:`ConditionalFlow.get_weights` orders them:
        per layer the masked kernel, the bias and the conditional kernel; the last layer
        maps to the (d, 2) outputs (shift, raw scale) of each coordinate, coordinate-major.
    d : int
        Number of coordinates.
    """

    def __init__(self, weights: list[np.ndarray], d: int):
        n_layers = len(weights) // 3
        self.d = d
        self.kernels, self.biases, self.cond, self.stops = [], [], [], []
        # Input j has degree j + 1; a hidden unit's degree is the largest degree it receives
        # from (masked weights are exactly zero), so it depends on coordinates < its degree.
        deg_prev = np.arange(1, d + 1)
        order_prev = np.arange(d)
        for l in range(n_layers):
            w = np.asarray(weights[3 * l], np.float64)[order_prev]
            b = np.asarray(weights[3 * l + 1], np.float64)
            wc = np.asarray(weights[3 * l + 2], np.float64)
            if l < n_layers - 1:
                conn = w != 0.0
                deg = np.max(np.where(conn, deg_prev[:, None], 0), axis=0)
                order = np.argsort(deg, kind="stable")
                deg = deg[order]
                # stops[l][i]: units of degree <= i, final once y_0 .. y_{i-1} are.
                self.stops.append(np.searchsorted(deg, np.arange(d), side="right"))
            else:
                order = np.arange(w.shape[1])
                deg = None
            self.kernels.append(w[:, order])
            self.biases.append(b[order])
            self.cond.append(wc[:, order])
            deg_prev, order_prev = deg, order
        if self.kernels[-1].shape[1] != 2 * d:
            raise ValueError("expected an affine MADE with 2 outputs per coordinate")

    def bind(self, c: np.ndarray) -> list:
        """Per-step weight blocks for one conditioning vector, as contiguous arrays.

        Returns a list over coordinates i of (hidden, out): ``hidden`` lists, per hidden
        layer l whose units of degree i exist, (l, inputs used, first unit, unit stop,
        kernel block, bias block): the units that become final at step i (the previous
        layer's first "inputs used" columns feed them); ``out`` is (inputs used, kernel
        (k, 2), bias (2,)) of coordinate i's shift and raw scale (the scale's softplus shift
        folded into the bias).
        """
        base = [c @ wc + b for wc, b in zip(self.cond, self.biases)]
        n_hidden = len(self.kernels) - 1
        done = [0] * n_hidden
        steps = []
        for i in range(self.d):
            hidden = []
            prev_done = i
            for l in range(n_hidden):
                stop = int(self.stops[l][i])
                if stop > done[l]:
                    hidden.append((l, prev_done, done[l], stop,
                                   np.ascontiguousarray(self.kernels[l][:prev_done, done[l]:stop]),
                                   base[l][done[l]:stop].copy()))
                    done[l] = stop
                prev_done = done[l]
            out = (prev_done, np.ascontiguousarray(self.kernels[-1][:prev_done, 2 * i:2 * i + 2]),
                   base[-1][2 * i:2 * i + 2] + np.array([0.0, SCALE_SHIFT]))
            steps.append((hidden, out))
        return steps

    def forward(self, eps: np.ndarray, steps: list, act) -> tuple[np.ndarray, np.ndarray]:
        """Solve y_i = eps_i scale_i(y_<i) + shift_i(y_<i) for i = 0 .. d-1.

        Parameters
        ----------
        eps : ndarray of shape (N, d)
        steps : list
            :meth:`bind` for the conditioning vector.
        act : callable
            Hidden-layer activation.

        Returns
        -------
        y : ndarray of shape (N, d)
        log_det : ndarray of shape (N,)
            log |det dy / d eps| = sum_i log scale_i.
        """
        n, d = eps.shape
        layers = [y := np.empty((n, d))] + [np.empty((n, k.shape[1])) for k in self.kernels[:-1]]
        scales = np.empty((n, d))
        for i, (hidden, (k_out, w_out, b_out)) in enumerate(steps):
            for l, k_in, lo, hi, w, b in hidden:
                layers[l + 1][:, lo:hi] = act(layers[l][:, :k_in] @ w + b)
            out = layers[-1][:, :k_out] @ w_out + b_out
            scale = _softplus(out[:, 1]) + MIN_SCALE
            y[:, i] = eps[:, i] * scale + out[:, 0]
            scales[:, i] = scale
        return y, np.sum(np.log(scales), axis=1)


class FlowMap:
    """The noise-to-parameter map of an affine :class:`~provabgs_sbi.inference.flows.ConditionalFlow`
    in numpy float64, for one conditioning vector.

    Parameters
    ----------
    flow : ConditionalFlow
        A MAF (``config.family == "maf"``) with ``config.transform == "affine"`` (spline
        or coupling flows: use :meth:`ConditionalFlow.push_forward`).
    x : array_like of shape (d_x,)
        The galaxy's conditioning vector.

    Notes
    -----
    ``forward(eps)`` equals ``flow.push_forward(eps, x)`` to float32 rounding (the flow's
    own precision); tests check it.
    """

    def __init__(self, flow: ConditionalFlow, x):
        if flow.config.family != "maf" or flow.config.transform != "affine":
            raise ValueError("FlowMap handles affine MAFs only; use ConditionalFlow.push_forward "
                             f"for family={flow.config.family!r}, "
                             f"transform={flow.config.transform!r}")
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.shape != (flow.d_x,):
            raise ValueError(f"x must have shape ({flow.d_x},), got {x.shape}")
        self.flow = flow
        self.d = flow.d_theta
        self.act = _ACTIVATIONS[flow.config.activation]
        self.c = flow._standardise_x(x[None, :])[0]
        weights = flow.get_weights()
        per_made = len(weights) // len(flow._mades)
        self.mades = [_Made(weights[k * per_made:(k + 1) * per_made], self.d)
                      for k in range(len(flow._mades))]
        self._steps = [m.bind(self.c) for m in self.mades]
        self.perms = [np.asarray(p) for p in flow._permutations]

    def forward(self, eps) -> tuple[np.ndarray, np.ndarray]:
        """theta(eps) and log |det d theta / d eps|.

        Parameters
        ----------
        eps : array_like of shape (N, d) or (d,)

        Returns
        -------
        theta : ndarray of shape (N, d)
            In the closed box ``[low, high]``; NaN rows where the map overflowed.
        log_det : ndarray of shape (N,)
            In nats; -inf where theta is NaN.
        """
        z = np.atleast_2d(np.asarray(eps, dtype=np.float64))
        if z.shape[1] != self.d:
            raise ValueError(f"eps must have {self.d} columns, got {z.shape[1]}")
        log_det = np.zeros(len(z))
        with np.errstate(over="ignore", invalid="ignore"):
            for k, made in enumerate(self.mades):
                z, ld = made.forward(z, self._steps[k], self.act)
                log_det += ld
                if k < len(self.perms):
                    z = z[:, self.perms[k]]
        return self.flow._theta_from_pushed(z, log_det)


def preconditioning_flow(flow):
    """The single flow whose map preconditions the MCMC.

    Parameters
    ----------
    flow : ConditionalFlow, FlowEnsemble or Posterior
        A :class:`~provabgs_sbi.inference.posterior.Posterior` gives its flow; an ensemble its first
        member (a mixture is not one invertible map; any member serves, since the target
        stays exact).

    Returns
    -------
    ConditionalFlow
        Checked to map the 11 warped parameters given the 11-vector x.
    """
    inner = getattr(flow, "flow", flow)                         # a Posterior
    members = getattr(inner, "members", None)                   # a FlowEnsemble
    if members is not None:
        inner = members[0]
    if not callable(getattr(inner, "push_forward", None)):
        raise ValueError("precondition must be a ConditionalFlow, a FlowEnsemble or a Posterior; "
                         f"got {type(flow).__name__}")
    if inner.d_theta != N_WARPED or inner.d_x != N_X:
        raise ValueError(f"the preconditioning flow maps {inner.d_theta} parameters given "
                         f"{inner.d_x} data; the MCMC needs {N_WARPED} given {N_X}")
    return inner


def flow_description(flow) -> dict:
    """What identifies a preconditioning flow in a results file: its box map, transform,
    architecture and a SHA-256 of its weights."""
    cfg = flow.config
    return {"box_transform": cfg.box_transform, "transform": cfg.transform,
            "n_transforms": int(cfg.n_transforms), "hidden_units": list(cfg.hidden_units),
            "weights_sha256": hash_arrays(*flow.get_weights())}


class FlowTarget:
    """A galaxy's log posterior over a flow's base noise (NeuTra; module docstring).

    Parameters
    ----------
    log_post : callable
        The posterior over warped coordinates w (a :class:`~provabgs_sbi.baselines.likelihood.LogPosterior`).
    flow : ConditionalFlow
        Its map w(eps): :class:`FlowMap` for affine flows (float64), else
        :meth:`ConditionalFlow.push_forward`.
    x : ndarray of shape (11,)
        The galaxy's conditioning vector.

    Notes
    -----
    Calling it on eps (M, 11) returns (M,): ``log_post(w(eps)) + log_det``, -inf where the
    flow overflows or w is outside the prior's support. Seconds in the flow are counted in
    :attr:`flow_s`. A slice sampler needs the density of a point not to depend on the
    other points of its call (see :func:`~provabgs_sbi.baselines.sampler.sampling_model`): FlowMap works
    row by row in float64, and push_forward pads every call of up to 16 rows to one
    compiled shape.
    """

    def __init__(self, log_post, flow, x):
        self.log_post = log_post
        self.flow = flow
        self.x = np.asarray(x, dtype=np.float64).reshape(N_X)
        self.map = FlowMap(flow, self.x) if flow.config.transform == "affine" else None
        self.flow_s = 0.0

    def to_warped(self, eps):
        """w(eps) (M, 11) and log |det dw / d eps| (M,)."""
        t0 = time.perf_counter()
        eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
        w = np.empty_like(eps)
        log_det = np.empty(len(eps))
        for s in range(0, len(eps), _CHUNK):                    # bounds memory
            part = slice(s, s + _CHUNK)
            if self.map is not None:
                w[part], log_det[part] = self.map.forward(eps[part])
            else:
                w[part], log_det[part] = self.flow.push_forward(eps[part], self.x)
        self.flow_s += time.perf_counter() - t0
        return w, log_det

    def __call__(self, eps) -> np.ndarray:
        w, log_det = self.to_warped(np.asarray(eps, dtype=np.float64))
        out = np.full(len(w), -np.inf)
        ok = np.isfinite(log_det)
        if np.any(ok):
            out[ok] = self.log_post(w[ok]) + log_det[ok]
        return out


def flow_walkers(target: FlowTarget, n_walkers: int, rng, n_init: int = 4096):
    """Starting walkers in base-noise space: flow draws resampled by their importance weights.

    ``n_init`` standard-normal eps (flow samples) are evaluated in one batched call and
    ``n_walkers`` of them drawn without replacement with probabilities proportional to
    p(w | x) / q(w | x) = exp(target(eps) - log N(eps)). Plain flow draws would also
    start walkers where the flow has mass and the posterior has next to none (a bc03
    test galaxy kept one walker 30 nats below the others for 2,000 iterations); the
    resampled ones start in the posterior's bulk.

    Parameters
    ----------
    target : FlowTarget
    n_walkers : int
    rng : numpy.random.Generator
    n_init : int
        Flow draws evaluated (at least ``n_walkers``).

    Returns
    -------
    start : ndarray of shape (n_walkers, 11)
        The walkers' base noise eps.
    log_prob : ndarray of shape (n_walkers,)
        ``target(start)``, nats.

    Raises
    ------
    RuntimeError
        Fewer than ``n_walkers`` draws have a finite posterior density.
    """
    n_init = max(int(n_init), int(n_walkers))
    eps = rng.standard_normal((n_init, N_WARPED))
    lp = target(eps)
    ok = np.isfinite(lp)
    if ok.sum() < n_walkers:
        raise RuntimeError(f"only {int(ok.sum())} of {n_init} flow draws have a finite posterior "
                           f"density, fewer than the {n_walkers} walkers; check the data, the "
                           "model and that the flow was trained for this prior")
    log_w = np.where(ok, lp + 0.5 * np.sum(eps**2, axis=1), -np.inf)
    wts = np.exp(log_w - log_w.max())
    n_pos = int(np.sum(wts > 0))
    if n_pos >= n_walkers:
        pick = rng.choice(n_init, size=n_walkers, replace=False, p=wts / wts.sum())
    else:               # a few draws carry all the weight (underflow): take the best finite
        pick = np.argsort(-np.where(ok, log_w, -np.inf))[:n_walkers]
    return eps[pick].copy(), lp[pick].copy()
