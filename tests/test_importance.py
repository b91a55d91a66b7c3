"""Importance sampling with a flow-like proposal: exact moments of the linear-Gaussian toy,
the Pareto tail diagnostic, and the resumable catalog file."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from provabgs_sbi.baselines import importance
from provabgs_sbi.model.parameters import N_WARPED, from_warped
from provabgs_sbi.model.priors import Prior
from tests.test_mcmc import SIGMA_TOY, LinearToy, toy_x


class GaussianProposal:
    """Duck-types ConditionalFlow: independent Gaussians on the toy's constrained
    coordinates (centre and widths given), the prior on the other eight."""

    def __init__(self, mean, sd):
        self.mean, self.sd = np.asarray(mean, float), np.asarray(sd, float)
        self.prior = Prior()
        self.idx = LinearToy.idx

    def sample(self, x, n, seed=None, nan_policy="raise"):
        rng = np.random.default_rng(seed)
        w = self.prior.sample_warped(n, seed=rng)
        w[:, self.idx] = self.mean + self.sd * rng.standard_normal((n, 3))
        return w[None]

    def sample_and_log_prob(self, x, n, seed=None):
        w = self.sample(x, n, seed=seed)
        return w, self.log_prob(w[0], x)[None]

    def log_prob(self, w, x):
        w = np.atleast_2d(w)
        lp = self.prior.log_prob_warped(w) + np.log(self.prior.high - self.prior.low)[self.idx].sum()
        g = -0.5 * ((w[:, self.idx] - self.mean) / self.sd) ** 2 - np.log(self.sd * np.sqrt(2 * np.pi))
        return lp + g.sum(axis=1)


class StubPosterior:
    def __init__(self, flow):
        self.flow, self.prior = flow, Prior()


def exact_toy_posterior(flux):
    toy = LinearToy()
    lam = np.diag(1.0 / SIGMA_TOY**2)
    cov = np.linalg.inv(toy.A.T @ lam @ toy.A)
    return toy.w0 + cov @ toy.A.T @ lam @ (flux - toy.c), cov


def test_broad_proposal_recovers_exact_moments_and_is_reliable():
    """A proposal 1.8x too broad and offset by 0.5 sd: the weighted draws still give the
    closed-form mean (to 0.1 sd) and sd (to 10%), with ESS near its target and k < 0.7."""
    x, flux = toy_x(seed=0)
    mean, cov = exact_toy_posterior(flux)
    sd = np.sqrt(np.diag(cov))
    post = StubPosterior(GaussianProposal(mean + 0.5 * sd, 1.8 * sd))
    res = importance.importance_sample(x, post, LinearToy(), n_resample=20000, target_ess=3000,
                                       batch=4000, seed=3, likelihood="flux")
    w = res.samples_warped
    assert res.samples.shape == (20000, 12) and w.shape == (20000, N_WARPED)
    np.testing.assert_allclose(res.samples, from_warped(w))
    np.testing.assert_array_less(np.abs(w[:, LinearToy.idx].mean(0) - mean), 0.1 * sd)
    np.testing.assert_allclose(w[:, LinearToy.idx].std(0), sd, rtol=0.1)
    assert res.ess >= 3000 and res.n_proposals % 4000 == 0
    assert res.reliable and res.pareto_k < importance.PARETO_K_MAX
    assert 0 < res.ess_fraction <= 1


def test_too_narrow_proposal_is_flagged_unreliable():
    """A proposal 4x too narrow misses the posterior's tails: heavy weight tail, k > 0.7."""
    x, flux = toy_x(seed=0)
    mean, cov = exact_toy_posterior(flux)
    sd = np.sqrt(np.diag(cov))
    post = StubPosterior(GaussianProposal(mean, 0.25 * sd))
    res = importance.importance_sample(x, post, LinearToy(), target_ess=1e9, batch=20000,
                                       max_proposals=20000, seed=0, likelihood="flux")
    assert res.n_proposals == 20000
    assert not res.reliable and res.pareto_k > importance.PARETO_K_MAX


def test_pareto_k_of_known_tails():
    rng = np.random.default_rng(0)
    light = np.log(rng.exponential(size=20000))            # exponential tail: k ~ 0
    heavy = np.log(rng.pareto(1.0 / 0.9, size=20000) + 1)  # Pareto tail with k = 0.9
    assert abs(importance.pareto_k(light)) < 0.15
    assert abs(importance.pareto_k(heavy) - 0.9) < 0.2
    assert np.isnan(importance.pareto_k(np.zeros(5)))


@pytest.mark.parametrize("kw, match", [({"n_resample": 0}, "n_resample"),
                                       ({"target_ess": 0}, "target_ess"),
                                       ({"likelihood": "chi"}, "likelihood")])
def test_bad_settings_raise(kw, match):
    x, flux = toy_x(seed=0)
    mean, cov = exact_toy_posterior(flux)
    post = StubPosterior(GaussianProposal(mean, np.sqrt(np.diag(cov))))
    with pytest.raises(ValueError, match=match):
        importance.importance_sample(x, post, LinearToy(), **kw)


def test_catalog_file_writes_resumes_and_reads_back(tmp_path):
    x0, flux = toy_x(seed=0)
    mean, cov = exact_toy_posterior(flux)
    post = StubPosterior(GaussianProposal(mean, 2 * np.sqrt(np.diag(cov))))
    x = np.stack([x0, x0, x0])
    path = tmp_path / "is.h5"
    kw = dict(likelihood="flux", n_resample=500, target_ess=200, batch=2000, progress=False)
    importance.run_importance_catalog(x, [0, 2], post, LinearToy(), path, **kw)
    with h5py.File(path, "a") as fh:                        # an interrupted write
        fh.create_group("row_1.tmp")
        first = fh["row_0"]["samples"][:]
    toy = LinearToy()
    importance.run_importance_catalog(x, [0, 1, 2], post, toy, path, **kw)
    rows = importance.read_importance_results(path)
    assert [r["row"] for r in rows] == [0, 1, 2]
    np.testing.assert_array_equal(rows[0]["samples"], first)   # finished rows not redone
    assert toy.n_points == rows[1]["n_proposals"]                # only row 1 was computed
    assert all(r["samples"].shape == (500, 12) and r["ess"] >= 200 for r in rows)
    # rows differ only by seed, so their draws differ
    assert not np.array_equal(rows[0]["samples"], rows[2]["samples"])


def test_catalog_file_refuses_other_settings_and_adopts_older_files(tmp_path):
    """The file records seed and likelihood: another seed is refused rather than mixed in.
    A file written before files recorded settings resumes, and records them from then on."""
    from provabgs_sbi.io.h5store import SettingsMismatch

    x0, flux = toy_x(seed=0)
    mean, cov = exact_toy_posterior(flux)
    post = StubPosterior(GaussianProposal(mean, 2 * np.sqrt(np.diag(cov))))
    x = np.stack([x0, x0])
    path = tmp_path / "is.h5"
    kw = dict(likelihood="flux", n_resample=100, target_ess=50, batch=1000, progress=False)
    importance.run_importance_catalog(x, [0], post, LinearToy(), path, seed=4, **kw)
    with pytest.raises(SettingsMismatch, match="other settings"):
        importance.run_importance_catalog(x, [0, 1], post, LinearToy(), path, seed=5, **kw)
    with h5py.File(path, "a") as fh:                        # as written before settings
        del fh.attrs["settings"]
    toy = LinearToy()
    importance.run_importance_catalog(x, [0, 1], post, toy, path, seed=4, **kw)
    rows = importance.read_importance_results(path)
    assert [r["row"] for r in rows] == [0, 1] and toy.n_points == rows[1]["n_proposals"]
    with h5py.File(path) as fh:
        assert fh.attrs["settings"] == '{"likelihood": "flux", "seed": 4}'
