"""Priors and the warped coordinates (model-spec 1.1, 5.5)."""
import numpy as np
import pytest

from provabgs_sbi import Prior
from provabgs_sbi.model.parameters import from_warped, to_warped, warp_log_jacobian


@pytest.mark.parametrize("kind", ["default", "sedflow"])
def test_samples_in_support_and_warp_roundtrip(kind):
    prior = Prior(kind)
    theta = prior.sample(5000, seed=0)
    assert theta.shape == (5000, 12)
    assert np.all(prior.in_support(theta))
    np.testing.assert_allclose(theta[:, 1:5].sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(from_warped(to_warped(theta)), theta, rtol=1e-9, atol=1e-12)
    w = prior.sample_warped(100, seed=1)
    np.testing.assert_allclose(to_warped(from_warped(w)), w, rtol=1e-9, atol=1e-9)


def test_flat_dirichlet_versus_sedflow_means():
    b_default = Prior().sample(200_000, seed=0)[:, 1:5].mean(axis=0)
    b_sedflow = Prior("sedflow").sample(200_000, seed=0)[:, 1:5].mean(axis=0)
    np.testing.assert_allclose(b_default, 0.25, atol=0.003)
    np.testing.assert_allclose(b_sedflow, [0.5, 0.25, 0.125, 0.125], atol=0.003)


def test_default_prior_density_is_flat_dirichlet():
    prior = Prior()
    theta = prior.sample(1000, seed=3)
    lp = prior.log_prob(theta)
    # Flat Dirichlet density on (beta1..3) is Gamma(4) = 6; the rest: boxes and log-uniform gamma.
    width = prior.high - prior.low
    expected = (np.log(6.0) - np.log(width[[0, 4, 5, 6, 7, 8, 9, 10]]).sum()
                - np.log(theta[:, 7] * np.log(10)) - np.log(theta[:, 8] * np.log(10)))
    np.testing.assert_allclose(lp, expected, rtol=1e-9)


def test_warped_density_normalised():
    """Monte Carlo: E_uniform-box[p / q_box] = 1."""
    prior = Prior()
    rng = np.random.default_rng(0)
    w = rng.uniform(prior.low, prior.high, size=(400_000, 11))
    vol = np.prod(prior.high - prior.low)
    est = np.mean(np.exp(prior.log_prob_warped(w))) * vol
    assert est == pytest.approx(1.0, abs=0.01)


def test_support_reporting():
    prior = Prior()
    theta = prior.sample(3, seed=0)
    bad = theta.copy()
    bad[1, 0] = 13.0           # log M* above 12.5
    assert list(prior.in_support(bad)) == [True, False, True]
    assert np.isneginf(prior.log_prob(bad)[1])
    with pytest.raises(ValueError, match="log_mstar"):
        prior.check(bad)
    with pytest.raises(ValueError):
        Prior("flat")


def test_warp_log_jacobian_matches_finite_differences():
    """log |det d theta_w / d q| by central differences, q the 11 free physical coordinates
    (beta4 = 1 - beta1 - beta2 - beta3), against the closed form, with and without the
    warped points given."""
    theta = Prior().sample(6, seed=5)

    def warp(q):
        beta4 = 1.0 - q[1:4].sum()
        return to_warped(np.concatenate([q[:4], [beta4], q[4:]])[None, :])[0]

    free = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    for t in theta:
        q = t[free]
        jac = np.empty((11, 11))
        for j in range(11):
            h = 1e-6 * max(abs(q[j]), 1e-3)
            step = np.zeros(11)
            step[j] = h
            jac[:, j] = (warp(q + step) - warp(q - step)) / (2 * h)
        want = np.linalg.slogdet(jac)[1]
        assert warp_log_jacobian(t[None, :])[0] == pytest.approx(want, abs=1e-5)
    np.testing.assert_array_equal(warp_log_jacobian(theta, to_warped(theta)),
                                  warp_log_jacobian(theta))
