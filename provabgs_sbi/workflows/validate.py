"""``provabgs-sbi validate``: calibration of a trained posterior on test galaxies drawn
exactly like its training set (new seed, never used in training).

For the 12 parameters and the derived properties it writes a JSON of the numbers of
:func:`provabgs_sbi.diagnostics.summary` (coverage, SBC ranks against the 99% binomial
band, p-p curves against the simultaneous ECDF band, TARP with its p-value) and PNGs of
the p-p curves, SBC histograms and TARP.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.baselines.importance import read_importance_results, run_importance_catalog
from provabgs_sbi.diagnostics import (ValidationConfig, binomial_band, pp_curve,
                                      sbc_bin_probabilities, sbc_histogram,
                                      sbc_ranks, summary, tarp)
from provabgs_sbi.diagnostics import coverage_by_name
from provabgs_sbi.inference.conditioning import Regime
from provabgs_sbi.inference.training_set import (TrainingSetConfig, check_emulator, check_held_out,
                                                 load_mag_true, load_training_set,
                                                 make_training_set)
from provabgs_sbi.io.paths import cache_dir
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.plots.paper import plot_anpe_vs_mcmc
from provabgs_sbi.plots.validation import plot_median_offsets, plot_pp, plot_sbc, plot_tarp
from provabgs_sbi.workflows.catalog_checks import catalog_checks
from provabgs_sbi.workflows.compare_mcmc import (MCMC_DEFAULTS, PRECONDITION_DEFAULT,
                                                 compare_references, compare_with_reference,
                                                 read_mcmc_results, run_mcmc_subsets, to_json)

DERIVED = ("log_mstar_surviving", "log_sfr_1gyr", "z_mw", "tage_mw")


def standard_regimes(default_floor, bands=("u", "g", "r", "i", "z"),
                     min_bands: int = 3, optional=()) -> tuple[Regime, ...]:
    """The regimes a mask-aware posterior is validated in (issue 19, item 5).

    Band patterns at the noise model's errors and floor 0: all bands, no bluest band, no
    reddest band, neither (for ugriz: all five, no u, no z, and no u and z, which is "g, r,
    i only"); errors three times typical (all bands, floor 0); the default floor (all
    bands, typical errors). A pattern that leaves fewer than ``min_bands`` bands is left out.
    For a survey with optional bands (GALEX in ``galex_sdss_2mass``) the patterns are those
    its catalogs have instead: all bands, each optional band missing, all of them missing.

    Parameters
    ----------
    default_floor : float or tuple of float
        The posterior's default floor, mag (one value, or one per band).
    bands : sequence of str
        The survey's bands, blue to red (default SDSS ugriz).
    min_bands : int
        Fewest bands the posterior fits.
    optional : sequence of str
        The survey's optional bands.
    """
    bands, optional = tuple(bands), tuple(optional)
    blue, red = bands[0], bands[-1]
    rest = ", ".join(b for b in bands if b not in (blue, red))
    if optional:
        required = ", ".join(b for b in bands if b not in optional)
        patterns = [Regime("all bands"), *(Regime(f"no {b}", (b,)) for b in optional)]
        if len(optional) > 1:
            patterns.append(Regime(f"no {', no '.join(optional)} ({required} only)", optional))
    else:
        patterns = [Regime("all bands"), Regime(f"no {blue}", (blue,)),
                    Regime(f"no {red}", (red,)),
                    Regime(f"no {blue}, no {red} ({rest} only)", (blue, red))]
    patterns = [r for r in patterns if len(bands) - len(r.missing) >= min_bands]
    return (*patterns, Regime("errors x3", inflate=3.0),
            Regime(f"default floor {describe_floor(default_floor, bands)}", floor=default_floor))


def describe_floor(floor, bands) -> str:
    """A floor for a regime's name: ``0.06 mag``, or per band ``FUV 0.1, NUV 0.1, u 0.04,
    ... mag`` (one value or one per band of ``bands``)."""
    f = np.atleast_1d(np.asarray(floor, dtype=np.float64))
    if f.size == 1 or np.all(f == f[0]):
        return f"{f[0]:g} mag"
    return ", ".join(f"{b} {v:g}" for b, v in zip(bands, f)) + " mag"


def observe(post, theta, x, mag_true, regime: Regime, seed: int):
    """Held-out galaxies observed afresh in ``regime`` through the posterior's conditioning.

    Parameters
    ----------
    post : Posterior
        Mask-aware (``post.conditioning`` set).
    theta : ndarray of shape (N, 12)
    x : ndarray of shape (N, 2 n_bands + 1)
        The file's x (only its redshifts are used).
    mag_true : ndarray of shape (N, n_bands)
        Noiseless magnitudes.
    regime : Regime
    seed : int

    Returns
    -------
    theta, x, floor : ndarrays of shapes (M, 12), (M, 2 n_bands + 1), (M, n_bands)
        The M <= N galaxies whose drawn errors are positive and, in a regime of fixed bands,
        that have exactly its bands (an optional band fainter than the detection limit is
        missing, :meth:`Conditioning.undetected`: such galaxies are not in "all bands").
    """
    from provabgs_sbi.inference.noise import survey_noise_model

    xr, floor, ok = post.conditioning.draw(mag_true, post.layout.redshift(x),
                                           post.noise or survey_noise_model(post.survey),
                                           rng=np.random.default_rng([seed, 29]), regime=regime)
    if not regime.patterns:
        want = np.isin(post.layout.bands, regime.missing)
        ok &= np.all(post.layout.missing(xr) == want, axis=1)
    return theta[ok], xr[ok], floor[ok]


def validate_regimes(post, test_path, n_test: int = 2000, n_samples: int = 1000, seed: int = 0,
                     regimes=None, out_dir=None, catalog_x=None,
                     allow_other_emulator: bool = False) -> dict:
    """Calibration of a mask-aware posterior per observing regime.

    Each regime gets the first ``n_test`` galaxies of ``test_path`` that can be observed in
    it (:func:`observe_first`: a regime of fixed bands keeps only galaxies with exactly its
    bands, so with optional bands it reads further into the file), with ``n_samples`` draws
    each, in the regime's floor. A file too short for ``n_test`` in a regime gives that
    regime fewer (its ``n_test`` says how many).

    Parameters
    ----------
    post : Posterior
        Mask-aware.
    test_path : path-like
        A training-set file held out from the posterior.
    regimes : sequence of Regime, optional
        Default :func:`standard_regimes` of the posterior's default floor and bands.
    catalog_x : array_like of shape (M, 2 n_bands + 1), optional
        A real catalog's x (:func:`validate_posterior` passes its ``real_catalog``'s for a
        survey with optional bands): one more regime, ``"catalog band patterns"``, gives the test
        galaxies its band patterns in its proportions (:meth:`Regime.from_catalog`).
    out_dir : path-like, optional
        Where ``regimes.png`` (coverage per parameter and regime) is drawn.
    allow_other_emulator : bool
        Accept a test file made with another emulator than the posterior's training set
        (emulator systematics; see :func:`validate_posterior`).

    Returns
    -------
    dict
        Per regime name: ``n_test``, ``coverage`` ({"0.68" | "0.95": {parameter: fraction}}),
        ``max_coverage_error`` (largest |coverage - nominal| over parameters and levels) and
        ``mean_log_q`` (at the truth, physical coordinates).
    """
    if post.conditioning is None:
        raise ValueError("regimes need a mask-aware posterior (trained with a Conditioning)")
    theta, _, x, _, mag_true = _held_out_set(post, test_path, None, allow_other_emulator)
    out = {}
    regimes = list(regimes or standard_regimes(post.default_floor, post.survey.bands,
                                               post.min_bands, post.conditioning.optional))
    if catalog_x is not None:
        regimes.append(Regime.from_catalog("catalog band patterns", catalog_x, post.layout))
    for regime in regimes:
        th, xr, floor = observe_first(post, theta, x, mag_true, regime, seed, n_test)
        samples = post.sample(xr, n_samples, seed=seed, floor=floor)
        cov = coverage_by_name(samples, th, PARAM_NAMES, (0.68, 0.95), decimals=4)
        err = max(abs(v - float(level)) for level, per in cov.items() for v in per.values())
        out[regime.name] = {"n_test": int(len(th)), "coverage": cov,
                            "max_coverage_error": round(float(err), 4),
                            "mean_log_q": round(float(np.mean(post.log_prob(th, xr, floor=floor))), 4),
                            "regime": {"missing": list(regime.missing), "inflate": regime.inflate,
                                       "floor": regime.floor}}
        if regime.patterns:
            out[regime.name]["regime"]["patterns"] = [[list(p), w] for p, w in regime.patterns]
    if out_dir is not None:
        from provabgs_sbi.plots.validation import plot_regime_coverage

        plot_regime_coverage(out, Path(out_dir) / "regimes.png")
    return out


def _derived(model, theta, z):
    d = model.derived(theta, z)
    with np.errstate(divide="ignore"):
        sfr = np.log10(np.maximum(d["sfr_1gyr"], 1e-12))
    return np.column_stack([d["log_mstar_surviving"], sfr, d["z_mw"], d["tage_mw"]])


#: How many test galaxies per galaxy wanted a survey with optional bands draws.
OPTIONAL_BAND_DRAWS = 3


def test_set(post, emulator, n_test: int = 1000, seed: int = 0, work_dir=None,
             progress: bool = True):
    """Test galaxies drawn exactly like the posterior's training set, with a seed no
    training set uses (10,000 + ``seed``); cached in ``work_dir`` (default
    ``<cache>/validation``).

    Returns
    -------
    path : Path
        The HDF5 file (:func:`~provabgs_sbi.inference.training_set.load_training_set` reads it).
    config : TrainingSetConfig
    """
    work = Path(work_dir) if work_dir else cache_dir() / "validation"
    cfg = TrainingSetConfig(n=n_test, seed=10_000 + seed, prior=post.prior.kind,
                            z_range=tuple(post.z_range), chunk=max(5000, 3 * n_test),
                            survey=post.survey)
    emulator_id = _emulator_id(emulator)
    tag = f"_e{emulator_id[:12]}" if emulator_id else ""     # one cached file per emulator
    if post.survey.name != "sdss_ugriz":
        tag += f"_{post.survey.name}"
    if tuple(map(float, post.z_range)) != tuple(map(float, post.survey.z_range)):
        # a posterior trusted on fewer redshifts (``flow zrange``) draws its own galaxies
        tag += "_z{:g}-{:g}".format(*post.z_range)
    path = make_training_set(work / f"test_{post.prior.kind}_{n_test}_s{seed}{tag}.h5", cfg,
                             emulator, noise=post.noise, emulator_id=emulator_id,
                             progress=progress)
    return path, cfg


def _emulator_id(emulator) -> str:
    """The manifest SHA-256 an emulator was loaded with ("" when it has none)."""
    return getattr(emulator, "manifest_sha256", None) or ""


def _held_out_set(post, test_path, n_test: int | None, allow_other_emulator: bool = False):
    """The first ``n_test`` rows (None: all) inside the posterior's redshift range of a
    training-set file checked to be held out from ``post`` (and, unless allowed otherwise,
    made with its training set's emulator), as
    :func:`~provabgs_sbi.inference.training_set.load_training_set` returns them, and their
    noiseless magnitudes (N, n_bands) last."""
    theta, warped, x, settings = load_training_set(test_path)
    mag_true = load_mag_true(test_path)
    cfg = settings["config"]
    trained = post.info.get("trained_z_range", post.z_range)
    if cfg["prior"] != post.prior.kind or not (np.allclose(cfg["z_range"], trained)
                                               or np.allclose(cfg["z_range"], post.z_range)):
        raise ValueError(f"{test_path} was drawn with prior {cfg['prior']!r} and z range "
                         f"{cfg['z_range']}; the posterior was trained with "
                         f"{post.prior.kind!r} and {list(trained)}")
    # a posterior restricted to part of its trained range (workflows.zrange) is tested there
    z = post.layout.redshift(x)
    inside = (z >= post.z_range[0]) & (z <= post.z_range[1])
    if not inside.all():
        theta, warped, x, mag_true = theta[inside], warped[inside], x[inside], mag_true[inside]
    check_held_out(test_path, settings, post.seen_training_set_settings())
    if not allow_other_emulator:
        check_emulator(settings.get("emulator", ""), post.training_set_settings(),
                       f"the emulator of {test_path}")
    if n_test is None:
        return theta, warped, x, settings, mag_true
    if len(x) < n_test:
        raise ValueError(f"{test_path} holds {len(x)} galaxies in the posterior's redshift "
                         f"range, fewer than n_test={n_test}")
    return theta[:n_test], warped[:n_test], x[:n_test], settings, mag_true[:n_test]


def observe_first(post, theta, x, mag_true, regime: Regime, seed: int, n: int):
    """:func:`observe` the galaxies of a test file in ``regime`` and keep the first ``n``
    of those it keeps (fewer if the file has fewer): a regime of fixed bands keeps only
    galaxies with exactly its bands (for GALEX, those detected), so it needs more rows of
    the file than it keeps."""
    th, xr, floor = observe(post, theta, x, mag_true, regime, seed)
    return th[:n], xr[:n], floor[:n]


def validate_posterior(post, emulator, out_dir, n_test: int = 1000, n_samples: int = 1000,
                       seed: int = 0, work_dir=None, progress: bool = True,
                       n_mcmc_test: int = 0, n_mcmc_real: int = 0, real_catalog=None,
                       mcmc_kwargs: dict | None = None,
                       importance_kwargs: dict | None = None, test_path=None,
                       allow_other_emulator: bool = False, check_catalog: bool = True) -> dict:
    """Run the calibration checks and write ``validation.json`` and PNGs into ``out_dir``.

    Parameters
    ----------
    post : Posterior
    emulator : Emulator
        Draws the test galaxies (as the training set) and is the MCMC's model.
    out_dir : path-like
        ``validation.json``, ``fig3_pp.png`` (p-p with the 99% simultaneous band),
        ``fig4_sbc.png`` (SBC with the 99% binomial band), ``tarp.png``; with MCMC also
        ``anpe_vs_mcmc.png`` and ``mcmc_pp.png``.
    n_test, n_samples : int
        Test galaxies and posterior draws per galaxy.
    seed : int
    work_dir : path-like, optional
        Cache of the test set and the MCMC files (default ``<cache>/validation``).
    n_mcmc_test, n_mcmc_real : int
        MCMC (:mod:`provabgs_sbi.workflows.compare_mcmc`) of the first ``n_mcmc_test`` test galaxies
        and of ``n_mcmc_real`` galaxies of ``real_catalog``, compared with ANPE; resumable.
    mcmc_kwargs : dict, optional
        ``n_walkers``, ``n_steps``, ``burn_in`` and ``precondition`` ("none" or "flow":
        NeuTra MCMC in the base-noise space of ``post``'s flow, :mod:`provabgs_sbi.experimental.neutra`)
        (default :data:`provabgs_sbi.workflows.compare_mcmc.MCMC_DEFAULTS`).
    test_path : path-like, optional
        Validate on the first ``n_test`` galaxies of this training-set file (e.g. the
        recipe's held-out set) instead of drawing new ones. It must be drawn like the
        posterior's training set (same prior and redshift range) with a seed no training
        set of the posterior used.
    allow_other_emulator : bool
        By default ``emulator`` (and a ``test_path`` file's emulator) must be the one the
        posterior's training set was made with, when both are recorded. With True another
        one is accepted: the test galaxies then come from it, which measures how the
        posterior fares on a different simulator (emulator systematics), not calibration.
    importance_kwargs : dict, optional
        Settings of the importance sampling of the same galaxies
        (:func:`provabgs_sbi.baselines.importance.importance_sample`: ``target_ess``, ``batch``,
        ``max_proposals``, ``n_resample``).
    check_catalog : bool
        For a mask-aware posterior and a ``real_catalog``:
        :func:`~provabgs_sbi.workflows.catalog_checks.catalog_checks` (noise flags, poor
        fits, one band removed, the bluest 5% in u - r) into ``catalog_checks``.

    Returns
    -------
    dict
        What ``validation.json`` holds.
    """
    if post.survey.name != "sdss_ugriz" and (n_mcmc_test > 0 or n_mcmc_real > 0):
        raise ValueError(f"the MCMC comparison is built for SDSS ugriz; survey "
                         f"{post.survey.name!r} posteriors are validated without it")
    emulator_id = _emulator_id(emulator)
    own_emulators = post.emulator_ids()
    if not allow_other_emulator:
        check_emulator(emulator_id, post.training_set_settings(), "the emulator given")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if test_path is None:
        # optional bands (GALEX) are detected in ~40% of the draws of galex_sdss_2mass: draw
        # enough for n_test galaxies with all bands
        optional = post.conditioning is not None and post.conditioning.optional
        path, _ = test_set(post, emulator, OPTIONAL_BAND_DRAWS * n_test if optional else n_test,
                           seed, work_dir, progress)
        theta, warped, x, settings = load_training_set(path)
        mag_true = load_mag_true(path)
    else:
        path = Path(test_path)
        theta, warped, x, settings, mag_true = _held_out_set(
            post, path, None if post.conditioning is not None else n_test, allow_other_emulator)
    floor = None
    if post.conditioning is not None:
        # a mask-aware posterior is validated at its default floor (all bands, typical
        # errors) on the first n_test galaxies observable so; validate_regimes covers the
        # other regimes, n_test galaxies each
        regime = Regime("all bands, default floor", floor=post.default_floor)
        theta, x, floor = observe_first(post, theta, x, mag_true, regime, seed, n_test)
    samples = post.sample(x, n_samples, seed=seed, floor=floor)
    model = emulator.burst_model
    z = post.layout.redshift(x)
    truth_d = _derived(model, theta, z)
    samp_d = _derived(model, samples.reshape(-1, 12), np.repeat(z, n_samples)).reshape(
        len(x), n_samples, len(DERIVED))
    all_s = np.concatenate([samples, samp_d], axis=-1)
    all_t = np.concatenate([theta, truth_d], axis=-1)
    names = list(PARAM_NAMES) + list(DERIVED)
    vcfg = ValidationConfig(pp_level=0.99, seed=seed)
    res = summary(all_s, all_t, names=names, config=vcfg)
    res["test_set"] = {"file": str(path), "config": settings["config"],
                       "emulator": settings.get("emulator", "")}
    res["emulator"] = {"manifest_sha256": emulator_id, "training_set_emulators": own_emulators}
    ranks = sbc_ranks(all_s, all_t)
    pp = pp_curve(ranks, n_samples, level=vcfg.pp_level)
    plot_pp(pp, out_dir / "fig3_pp.png", names=names,
            title=f"p-p, {len(x)} test galaxies (99% simultaneous band)")
    counts = sbc_histogram(ranks, n_samples, vcfg.n_bins)
    # The band of validation.json: bins of unequal probability when n_samples + 1 ranks do
    # not divide evenly into n_bins.
    band = binomial_band(len(x), vcfg.n_bins, vcfg.sbc_level,
                         bin_prob=sbc_bin_probabilities(n_samples, vcfg.n_bins))
    plot_sbc(counts, band, out_dir / "fig4_sbc.png", names=names,
             title=f"SBC, {len(x)} test galaxies (99% binomial band)")
    plot_tarp(tarp(samples, theta), out_dir / "tarp.png")

    if n_mcmc_test > 0 or n_mcmc_real > 0:
        work = Path(work_dir) if work_dir else cache_dir() / "validation"
        # Another emulator's runs go elsewhere: files from before MCMC files recorded the
        # emulator would otherwise resume with it.
        tag = f"_e{emulator_id[:12]}" if emulator_id and emulator_id not in own_emulators else ""
        res["mcmc"] = _mcmc_comparison(post, emulator, x, theta, out_dir,
                                       work / f"mcmc_s{seed}{tag}", n_mcmc_test, n_mcmc_real,
                                       real_catalog, seed, progress, mcmc_kwargs or {},
                                       importance_kwargs or {})
    if post.conditioning is not None:
        res["regimes"] = validate_regimes(
            post, path, n_test=n_test, n_samples=n_samples, seed=seed, out_dir=out_dir,
            catalog_x=(real_catalog.to_x() if real_catalog is not None
                       and post.conditioning.optional else None),
            allow_other_emulator=allow_other_emulator)
        if real_catalog is not None and check_catalog:
            # the direct model photometers in SDSS filters only; other surveys' checks use
            # the emulator in their filters, as catalog fits do
            sdss = post.survey.name == "sdss_ugriz"
            res["catalog_checks"] = catalog_checks(post, model if sdss else emulator,
                                                   real_catalog.to_x(),
                                                   getattr(real_catalog, "ivar", None),
                                                   seed=seed)
            res["catalog_checks"]["catalog"] = str(getattr(real_catalog, "source", ""))
    (out_dir / "validation.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def _mcmc_comparison(post, emulator, x, theta, out_dir, mcmc_dir, n_test, n_real, real_catalog,
                     seed, progress, mcmc_kwargs, importance_kwargs) -> dict:
    """MCMC and importance sampling of the subsets, ANPE against both, MCMC against the
    importance-sampled posteriors, and their figures; returns the JSON part."""
    run_kw = {**MCMC_DEFAULTS, **mcmc_kwargs}
    pre = run_kw.pop("precondition", PRECONDITION_DEFAULT)
    if pre not in ("none", "flow"):
        raise ValueError(f"precondition must be 'none' or 'flow', got {pre!r}")
    if pre == "flow":
        run_kw["precondition"] = post
    files = run_mcmc_subsets(emulator, x, mcmc_dir, n_test=n_test, real_catalog=real_catalog,
                             n_real=n_real, seed=seed, progress=progress, **run_kw)
    out = {"settings": {**MCMC_DEFAULTS, "precondition": pre, **mcmc_kwargs}, "files": {k: str(v) for k, v in
                                                                    files.items() if k != "real_rows"}}
    # The same galaxies importance-sampled from the flow: exact posteriors of the same
    # prior, likelihood and emulator, with their own reliability check (Pareto k).
    exact = {}
    if files["test"] is not None:
        path = run_importance_catalog(x, range(n_test), post, emulator, mcmc_dir / "is_test.h5",
                                      seed=seed, likelihood="mag", progress=progress,
                                      **importance_kwargs)
        exact["test"] = read_importance_results(path)
    if files["real"] is not None:
        path = run_importance_catalog(real_catalog.to_x(), files["real_rows"], post, emulator,
                                      mcmc_dir / "is_real.h5", seed=seed, likelihood="flux",
                                      ivar=real_catalog.ivar, progress=progress,
                                      **importance_kwargs)
        exact["real"] = read_importance_results(path)
    chains = {k: read_mcmc_results(files[k]) for k in ("test", "real")
              if files[k] is not None}
    def same_draws(k):
        # ANPE draws of the MCMC comparison, reused when the importance rows are the same
        same = [r["row"] for r in chains[k]] == [r["row"] for r in exact[k]]
        return comps[k]["anpe"] if same else None

    comps, comps_exact = {}, {}
    if files["test"] is not None:
        comps["test"] = compare_with_reference(post, chains["test"], truth=theta, seed=seed)
        comps_exact["test"] = compare_with_reference(post, exact["test"], truth=theta, seed=seed,
                                                     anpe=same_draws("test"))
        c = comps["test"]
        n_pp = min(1000, min(len(m) for m in c["mcmc"]))
        mc = np.stack([m[np.random.default_rng(seed).choice(len(m), n_pp, replace=False)]
                       for m in c["mcmc"]])
        pp = pp_curve(sbc_ranks(mc, c["truth"]), mc.shape[1], level=0.99)
        plot_pp(pp, out_dir / "mcmc_pp.png", names=list(PARAM_NAMES),
                title=f"p-p of the MCMC posteriors, {len(mc)} test galaxies (99% band)")
    if files["real"] is not None:
        comps["real"] = compare_with_reference(post, chains["real"], seed=seed)
        comps_exact["real"] = compare_with_reference(post, exact["real"], seed=seed,
                                                     anpe=same_draws("real"))
        c = comps["real"]
        plot_anpe_vs_mcmc(c["anpe"][0], c["mcmc"][0], c["per_galaxy_x"][0], emulator,
                          out_dir / "fig2_anpe_vs_mcmc.png",
                          title=f"SDSS galaxy {c['per_galaxy'][0]['id']}",
                          exact=exact["real"][0]["samples"])
    between = {}
    for k in exact:
        if any(r["reliable"] for r in exact[k]):
            between[k] = compare_references(chains[k], exact[k])
        else:
            between[k] = {"n_galaxies": 0, "rows": [],
                          "note": "no reliable importance-sampled posterior (Pareto k >= 0.7)"}
    bars = {}
    for k, c in comps_exact.items():
        bars[f"ANPE vs importance, {k} ({c['reliable']}/{c['n_galaxies']} reliable)"] = \
            c["median_offset_mean"]
    for k, c in comps.items():
        bars[f"ANPE vs MCMC, {k} ({c['converged']}/{c['n_galaxies']} converged)"] = \
            c["median_offset_mean"]
    for k, c in between.items():
        if c["n_galaxies"]:
            bars[f"MCMC vs importance, {k}"] = c["median_offset_mean"]
    plot_median_offsets(bars, out_dir / "anpe_vs_mcmc.png")
    for k, c in comps.items():
        out[k] = to_json(c)
    out["importance"] = {k: to_json(c) for k, c in comps_exact.items()}
    out["mcmc_vs_importance"] = between
    return out
