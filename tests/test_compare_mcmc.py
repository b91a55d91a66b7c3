"""ANPE against MCMC: catalogs from x, the subset runner, and the comparison numbers."""
from __future__ import annotations

import numpy as np
import pytest

from provabgs_sbi.workflows import compare_mcmc as cm
from provabgs_sbi.model.parameters import WARPED_NAMES, from_warped
from provabgs_sbi.model.priors import Prior

from .test_mcmc import LinearToy, toy_x


def test_catalog_from_x_round_trips():
    x = np.array([toy_x(seed=s)[0] for s in range(4)])
    cat = cm.catalog_from_x(x, z_range=(0.0, 0.3))
    assert np.all(cat.valid)
    np.testing.assert_allclose(cat.to_x(), x, rtol=1e-10)


class _FakePosterior:
    """Draws warped parameters around fixed centres (so medians and widths are known)."""

    def __init__(self, centre, sd):
        self.centre, self.sd = centre, sd

    def sample(self, x, n, seed=None):
        rng = np.random.default_rng(seed)
        w = self.centre + self.sd * rng.standard_normal((len(x), n, len(self.centre)))
        return from_warped(w.reshape(-1, len(self.centre))).reshape(len(x), n, 12)


def _results(centre, sd, n_gal=3, n=6000, walkers=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n_gal):
        w = centre + sd * rng.standard_normal((n, len(centre)))
        out.append({"row": r, "id": str(r), "x": toy_x(seed=r)[0], "samples": from_warped(w),
                    "converged": r != 1, "tau": np.full(11, 3.0), "rhat": np.full(11, 1.01),
                    "timing": {"total_s": 10.0 + r}})
    return out


def test_compare_with_reference_reports_median_offsets_in_sigma():
    centre = Prior().sample_warped(1, seed=1)[0]
    centre[1:4] = [0.5, 0.5, 0.5]
    sd = 0.01 * (Prior().high - Prior().low)
    shift = np.zeros(11)
    shift[0] = 0.5 * sd[0]                      # ANPE offset by half a sigma in log M*
    res = cm.compare_with_reference(_FakePosterior(centre + shift, sd), _results(centre, sd),
                                    n_samples=6000)
    off = res["median_offset_mean"]
    assert off["log_mstar"] == pytest.approx(0.5, abs=0.06)
    assert all(off[k] < 0.08 for k in WARPED_NAMES[1:])
    assert res["ks_mean"]["log_mstar"] > 0.15 > res["ks_mean"]["tau_ism"]
    assert res["n_galaxies"] == 3 and res["converged"] == 2
    assert res["seconds_median"] == 11.0
    js = cm.to_json(res)
    assert "anpe" not in js and "mcmc" not in js
    # With the truth: coverage of the MCMC and ANPE central intervals.
    truth = from_warped(np.repeat(centre[None], 3, axis=0))
    res = cm.compare_with_reference(_FakePosterior(centre, sd), _results(centre, sd),
                                    truth=truth, n_samples=2000)
    assert set(res["mcmc_coverage"]) == {"0.68", "0.95"}
    assert res["mcmc_coverage"]["0.68"]["log_mstar"] == 1.0      # truth at the centre
    with pytest.raises(ValueError, match="no finished"):
        cm.compare_with_reference(_FakePosterior(centre, sd), [])


def _importance_rows(results):
    keep = ("row", "id", "x", "samples", "timing")
    return [{**{k: r[k] for k in keep}, "reliable": r["row"] != 2, "ess": 1500.0,
             "pareto_k": 0.3 if r["row"] != 2 else 0.9, "n_proposals": 100000}
            for r in results]


def test_compare_with_importance_rows_and_between_references():
    centre = Prior().sample_warped(1, seed=1)[0]
    centre[1:4] = [0.5, 0.5, 0.5]
    sd = 0.01 * (Prior().high - Prior().low)
    rows = _importance_rows(_results(centre, sd, seed=4))
    res = cm.compare_with_reference(_FakePosterior(centre, sd), rows, n_samples=4000)
    assert res["kind"] == "importance" and res["reliable"] == 2 and "converged" not in res
    assert res["n_averaged"] == 2            # the unreliable row 2 is left out of the means
    assert res["per_galaxy"][2]["pareto_k"] == 0.9
    assert max(res["median_offset_mean"].values()) < 0.08
    again = cm.compare_with_reference(None, rows, anpe=res["anpe"])    # draws reused
    assert again["median_offset_mean"] == res["median_offset_mean"]
    with pytest.raises(ValueError, match="anpe holds"):
        cm.compare_with_reference(None, rows, anpe=res["anpe"][:2])
    with pytest.raises(ValueError, match="mix"):
        cm.compare_with_reference(_FakePosterior(centre, sd), rows + _results(centre, sd))
    # MCMC shifted by 0.4 sigma in n_dust against the importance rows, row by row.
    shifted = _results(centre + np.eye(11)[10] * 0.4 * sd, sd, seed=5)
    between = cm.compare_references(shifted, rows)      # row 2's reference is unreliable
    assert between["n_galaxies"] == 2 and between["rows"] == [0, 1]
    assert between["median_offset_mean"]["n_dust"] == pytest.approx(0.4, abs=0.06)
    assert between["median_offset_mean"]["log_mstar"] < 0.06
    with pytest.raises(ValueError, match="no galaxy"):
        cm.compare_references(shifted, [dict(rows[0], row=99)])


def test_run_mcmc_subsets_and_read_back(tmp_path):
    x = np.array([toy_x(seed=s)[0] for s in range(2)])

    class Emu(LinearToy):
        pass

    files = cm.run_mcmc_subsets(Emu(), x, tmp_path, n_test=2, n_real=0, progress=False,
                                n_walkers=22, n_steps=30, burn_in=10)
    assert files["real"] is None
    res = cm.read_mcmc_results(files["test"])
    assert [r["row"] for r in res] == [0, 1]
    assert res[0]["samples"].shape == (22 * 20, 12)
    np.testing.assert_allclose(res[1]["x"], x[1], rtol=1e-10)
    # Resumed: nothing is run again.
    again = cm.run_mcmc_subsets(Emu(), x, tmp_path, n_test=2, n_real=0, progress=False,
                                n_walkers=22, n_steps=30, burn_in=10)
    assert cm.read_mcmc_results(again["test"])[0]["timing"] == res[0]["timing"]
    real = cm.catalog_from_x(np.array([toy_x(seed=s)[0] for s in range(6)]), z_range=(0, 0.3))
    rows = cm.real_rows(real, 3, seed=1)
    assert len(set(rows)) == 3 and np.all(np.diff(rows) > 0)
    with pytest.raises(ValueError, match="valid rows"):
        cm.real_rows(real, 7)
