"""Equal-weight mixtures of conditional flows trained on the same data.

An ensemble q(theta | x) = (1/K) sum_k q_k(theta | x) of flows that differ in their
initialisation, their box map or their training run is never worse in expected
log-likelihood than its average member (log is concave), and is usually better than its
best member, because the members' errors are partly independent. Ensembles of neural
posterior estimators are also better calibrated (Hermans et al. 2022, "A crisis in
simulation-based inference? Beware, your posterior approximations can be unfaithful").

:class:`FlowEnsemble` has the methods of :class:`~provabgs_sbi.inference.flows.ConditionalFlow`
that a posterior needs (``sample``, ``log_prob``, ``sample_and_log_prob``, ``save``,
``load``), so :class:`~provabgs_sbi.inference.posterior.Posterior` and the importance sampler take
either. :func:`load_flow` reads whichever of the two a folder holds.

Folder layout::

    ensemble.json      format, member folder names, SHA-256 of each member's manifest
    member_0/ ...      one saved ConditionalFlow per member
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from provabgs_sbi.inference.flows import ConditionalFlow
from provabgs_sbi.io.artifacts import MANIFEST, read_format_file, verify_files
from provabgs_sbi.io.atomic import atomic_write_bytes
from provabgs_sbi.io.hashing import sha256_file

__all__ = ["FlowEnsemble", "load_flow"]

_FORMAT = "provabgs_sbi.FlowEnsemble/1"
_INDEX = "ensemble.json"


class FlowEnsemble:
    """Equal-weight mixture of :class:`~provabgs_sbi.inference.flows.ConditionalFlow` on one box.

    Parameters
    ----------
    members : sequence of ConditionalFlow
        At least two flows with the same parameter and data dimensions and the same box.
    """

    def __init__(self, members):
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 flows, got {len(members)}")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            if (m.d_theta, m.d_x) != (first.d_theta, first.d_x):
                raise ValueError(f"member {k} maps {m.d_theta} parameters given {m.d_x} data, "
                                 f"member 0 {first.d_theta} given {first.d_x}")
            if not (np.array_equal(m.low, first.low) and np.array_equal(m.high, first.high)):
                raise ValueError(f"member {k} has another box than member 0")
        self.members = members
        self.d_theta, self.d_x = first.d_theta, first.d_x
        self.low, self.high = first.low.copy(), first.high.copy()

    @property
    def n_members(self) -> int:
        return len(self.members)

    def in_box(self, theta) -> np.ndarray:
        """Boolean (N,): rows of ``theta`` inside the closed box ``[low, high]``."""
        return self.members[0].in_box(theta)

    # ------------------------------------------------------------ sampling
    def _counts(self, n_obs: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """How many of each observation's n draws come from each member, (n_obs, K)."""
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        return rng.multinomial(int(n), np.full(self.n_members, 1.0 / self.n_members),
                               size=n_obs)

    def _draw(self, x_obs, n, seed, chunk_size, with_log_q, nan_policy="raise"):
        x_obs = np.atleast_2d(np.asarray(x_obs, dtype=np.float64))
        n_obs = len(x_obs)
        rng = np.random.default_rng(seed)
        counts = self._counts(n_obs, n, rng)
        member_seeds = rng.spawn(self.n_members)
        n = int(n)
        theta = np.empty((n_obs, n, self.d_theta))
        log_q = np.empty((n_obs, n)) if with_log_q else None
        source = np.empty((n_obs, n), dtype=np.int64)     # which member drew each sample
        start = np.zeros(n_obs, dtype=np.int64)
        for k, member in enumerate(self.members):
            m = int(counts[:, k].max()) if n_obs else 0
            if m == 0:
                continue
            if with_log_q:
                th_k, lq_k = member.sample_and_log_prob(x_obs, m, seed=member_seeds[k],
                                                        chunk_size=chunk_size)
            else:
                th_k = member.sample(x_obs, m, seed=member_seeds[k], chunk_size=chunk_size,
                                     nan_policy=nan_policy)
            # Observation i takes the first counts[i, k] of member k's m draws.
            take = np.arange(m)[None, :] < counts[:, k][:, None]
            rows, cols = np.nonzero(take)
            slots = start[rows] + cols
            theta[rows, slots] = th_k[rows, cols]
            source[rows, slots] = k
            if with_log_q:
                log_q[rows, slots] = lq_k[rows, cols]
            start += counts[:, k]
        if with_log_q:
            log_q = self._mixture_log_q(theta, log_q, source, x_obs, chunk_size)
        # Members' draws are in blocks: shuffle each observation's draws (same permutation
        # for theta and log_q) so that any prefix is a sample of the mixture.
        perm = np.argsort(rng.random((n_obs, n)), axis=1)
        theta = np.take_along_axis(theta, perm[:, :, None], axis=1)
        if with_log_q:
            log_q = np.take_along_axis(log_q, perm, axis=1)
        return theta, log_q

    def _mixture_log_q(self, theta, own, source, x_obs, chunk_size) -> np.ndarray:
        """log of the mixture density at each draw, (n_obs, n): the drawing member's own
        density at the drawn point (exact, see ConditionalFlow.sample_and_log_prob) and
        the other members' log_prob of theta, one batched call per member. Near a face the
        others' density may come out too low (theta is moved inside first), which lowers
        the mixture's by at most a factor K."""
        ok = np.isfinite(own)
        x_rows = np.broadcast_to(x_obs[:, None, :], own.shape + (self.d_x,))
        terms = np.full((self.n_members,) + own.shape, -np.inf)
        for j, member in enumerate(self.members):
            mine = source == j
            terms[j][mine & ok] = own[mine & ok]
            other = ~mine & ok
            if other.any():
                terms[j][other] = member.log_prob(theta[other], x_rows[other],
                                                  chunk_size=chunk_size)
        out = logsumexp(terms, axis=0) - np.log(self.n_members)
        return np.where(ok, out, np.nan)

    def sample(self, x_obs, n: int, seed=None, chunk_size: int = 16384,
               nan_policy: str = "raise") -> np.ndarray:
        """Draw from the mixture: each draw comes from a member chosen uniformly.

        Parameters
        ----------
        x_obs, n, chunk_size, nan_policy
            As :meth:`ConditionalFlow.sample`: observations (n_obs, d_x) or (d_x,), draws
            per observation, rows per call, what to do on overflow.
        seed : int, numpy Generator or None
            Seeds the member choice and each member's base noise.

        Returns
        -------
        ndarray of shape (n_obs, n, d_theta)
            Always inside the closed box (or NaN where a member overflowed).
        """
        return self._draw(x_obs, n, seed, chunk_size, with_log_q=False,
                          nan_policy=nan_policy)[0]

    def sample_and_log_prob(self, x_obs, n: int, seed=None, chunk_size: int = 16384):
        """Draws of the mixture and the mixture's log density at each (importance sampling).

        Returns
        -------
        theta : ndarray of shape (n_obs, n, d_theta)
        log_q : ndarray of shape (n_obs, n)
            log (1/K) sum_k q_k(theta | x); NaN where theta is NaN.
        """
        return self._draw(x_obs, n, seed, chunk_size, with_log_q=True)

    def log_prob(self, theta, x, chunk_size: int = 16384) -> np.ndarray:
        """log (1/K) sum_k q_k(theta | x), shape (N,); ``-inf`` outside the box."""
        terms = np.stack([m.log_prob(theta, x, chunk_size=chunk_size) for m in self.members])
        with np.errstate(divide="ignore"):
            return logsumexp(terms, axis=0) - np.log(self.n_members)

    # ------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write each member to ``member_<k>/`` and an index with their manifests' hashes."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        names = []
        for k, member in enumerate(self.members):
            member.save(path / f"member_{k}")
            names.append(f"member_{k}")
        index = dict(format=_FORMAT, members=names,
                     manifests={n: sha256_file(path / n / MANIFEST) for n in names})
        atomic_write_bytes(path / _INDEX, json.dumps(index, indent=1).encode())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FlowEnsemble":
        """Read an ensemble written by :meth:`save`, verifying every member's files.

        Raises
        ------
        FileNotFoundError
            No index, or a member's file is missing.
        provabgs_sbi.io.artifacts.ChecksumError
            A member's manifest does not match its hash in the index, or a member's file
            its hash in that manifest.
        """
        path = Path(path)
        index = read_format_file(path / _INDEX, _FORMAT, "a saved FlowEnsemble")
        verify_files(path, {f"{name}/{MANIFEST}": index["manifests"].get(name)
                            for name in index["members"]}, path / _INDEX)
        return cls([ConditionalFlow.load(path / name) for name in index["members"]])

    def __repr__(self) -> str:
        kinds = ", ".join(m.config.box_transform for m in self.members)
        return f"FlowEnsemble({self.n_members} flows: {kinds})"


def load_flow(path: str | os.PathLike):
    """A saved :class:`FlowEnsemble` or :class:`~provabgs_sbi.inference.flows.ConditionalFlow`,
    whichever ``path`` holds."""
    path = Path(path)
    if (path / _INDEX).exists():
        return FlowEnsemble.load(path)
    return ConditionalFlow.load(path)
