"""Training and testing the SED posterior (ANPE) from a training-set file."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from provabgs_sbi.diagnostics import coverage_by_name
from provabgs_sbi.inference.ensemble import FlowEnsemble
from provabgs_sbi.inference.flows import ConditionalFlow, auto_candidates
from provabgs_sbi.inference.noise import survey_noise_model
from provabgs_sbi.inference.posterior import Posterior, init_training_set_settings
from provabgs_sbi.inference.conditioning import Conditioning, Regime
from provabgs_sbi.inference.training_set import (check_held_out, load_mag_true,
                                                 load_training_set, load_training_sets,
                                                 made_alike, training_set_survey)
from provabgs_sbi.model.survey import SDSS_UGRIZ
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.model.priors import Prior


def train_posterior(trainset_path, out_dir, flow_config=None, checkpoint_dir=None,
                    test_path=None, n_test_samples: int = 1000, progress: bool = True,
                    inputs=None, recipe=None, log=print, init=None,
                    init_training_sets=None, conditioning: Conditioning | None = None,
                    default_floor: float = 0.0, noise=None,
                    auto_overrides: dict | None = None) -> tuple[Posterior, dict]:
    """Fit the conditional flow on a training set and save ``flows/<configuration>``.

    The bands are those of the training sets' survey
    (:func:`~provabgs_sbi.inference.training_set.training_set_survey`; SDSS ugriz for every
    file made before surveys existed); a posterior of another survey records it and saves
    its noise model in its folder.

    Parameters
    ----------
    trainset_path : path-like or sequence of path-like
        File(s) from :func:`provabgs_sbi.inference.training_set.make_training_set`; several files
        (made alike, other seeds) are joined by
        :func:`~provabgs_sbi.inference.training_set.load_training_sets`.
    flow_config : FlowConfig, optional
        Default: the procedure :meth:`ConditionalFlow.fit` applies without a config
        (:mod:`~provabgs_sbi.inference.flows.auto`: an affine and a spline MAF sized by the
        number of galaxies, the lower validation loss kept; with ``init``, ``init``'s
        settings).
    auto_overrides : dict, optional
        Without ``flow_config``: FlowConfig fields set by hand in both candidates of the
        default procedure (e.g. ``{"seed": 1, "max_epochs": 60}``), or, with ``init``, in
        ``init``'s settings.
    checkpoint_dir : path-like, optional
        Checkpoints for resuming an interrupted training (default: beside the first
        training-set file).
    test_path : path-like, optional
        A held-out training-set file (other seed): coverage of the central 68% and 95%
        intervals per parameter goes into the manifest's metrics.
    init : ConditionalFlow, optional
        Fine-tune this trained flow instead of starting from random weights (see
        :meth:`ConditionalFlow.fit`); its weights' hash goes into the manifest's inputs.
        With ``conditioning``, ``init`` may be a SEDflow flow (magnitudes, errors, z): its
        inputs are widened to the mask-aware ones (``init_inputs`` of
        :meth:`ConditionalFlow.fit`).
    init_training_sets : list of dict, optional
        Settings of the training sets ``init`` was fitted to (and those it started from),
        recorded as ``info["init_training_sets"]``: galaxies of those seeds are not held out
        from the fine-tuned flow either (:meth:`Posterior.seen_training_set_settings`).
    conditioning : Conditioning, optional
        Train a mask-aware posterior: the inputs are drawn afresh from the training sets'
        noiseless magnitudes with :meth:`Conditioning.draw` (inflated errors, floors,
        missing bands; seeded by the flow's seed) and encoded with
        :meth:`Conditioning.encode`. Without it the files' own x are used (SEDflow).
    default_floor : float
        The floor (mag) fits of a mask-aware posterior use unless told otherwise.
    noise : NoiseModel, optional
        The noise model the training sets were made with (default the survey's own,
        :func:`~provabgs_sbi.inference.noise.survey_noise_model`): the mask-aware draws
        and the sigma flag use it. Its source must be the one the files record.

    Raises
    ------
    ValueError
        The noise model is not the one the training sets were made with, or the
        conditioning's bands are not the survey's.
    """
    paths = ([trainset_path] if isinstance(trainset_path, (str, Path)) else list(trainset_path))
    theta, warped, x, settings = load_training_sets(paths)
    cfg = settings[0]["config"]
    prior = Prior(cfg["prior"])
    seed = (flow_config.seed if flow_config is not None
            else (auto_overrides or {}).get("seed", init.config.seed if init else 0))
    ckpt = Path(checkpoint_dir) if checkpoint_dir else Path(str(paths[0]) + ".checkpoints")
    survey = training_set_survey(settings[0])
    lay = survey.layout
    noise = survey_noise_model(survey) if noise is None else noise
    recorded = settings[0].get("noise_provenance", "")
    if recorded and recorded != str(noise.provenance.get("source_sha256", "")):
        raise ValueError(f"the training sets were made with the noise model of source SHA-256 "
                         f"{recorded[:12]}..., not this one "
                         f"({str(noise.provenance.get('source_sha256', ''))[:12]}...): pass the "
                         "noise model they were made with")
    mags = lay.mags(x)
    x_in = x
    if conditioning is None and survey.optional_bands:
        raise ValueError(f"survey {survey.name!r} has optional bands "
                         f"{list(survey.optional_bands)}, which its training sets keep at any "
                         "magnitude (undetected ones too): train a mask-aware posterior "
                         "(a Conditioning; flow train --mask-aware)")
    if conditioning is not None:
        if conditioning.bands != survey.bands:
            raise ValueError(f"the conditioning's bands {list(conditioning.bands)} are not the "
                             f"training sets' ({survey.name}: {list(survey.bands)}); build it "
                             "with Conditioning.for_survey")
        x_cat, floor, ok = conditioning.draw(load_mag_true(paths), lay.redshift(x), noise,
                                             rng=np.random.default_rng([seed, 19]))
        warped, x_cat, floor = warped[ok], x_cat[ok], floor[ok]
        conditioning = conditioning.with_fill(lay.mags(x_cat), lay.errors(x_cat))
        conditioning.check_floor(default_floor)
        x_in, mags = conditioning.encode(x_cat, floor), lay.mags(x_cat)
        log(f"mask-aware inputs: {conditioning}")
    if flow_config is None and init is None:
        candidates = auto_candidates(len(x_in), warped.shape[1], x_in.shape[1],
                                                **(auto_overrides or {}))
        flow_config = candidates
        shape = (f"default procedure: {' and '.join(c.transform for c in candidates)} MAFs of "
                 f"{candidates[0].n_transforms} x {candidates[0].hidden_units}, the lower "
                 "validation loss kept")
    else:
        # A warm start keeps the given flow's settings, with any overrides.
        flow_config = flow_config or dataclasses.replace(init.config, **(auto_overrides or {}))
        shape = f"{flow_config.n_transforms} x {flow_config.hidden_units}"
    log(f"training the flow on {len(x_in):,} galaxies from {len(paths)} file(s) "
        f"({shape}{', fine-tuning the given flow' if init is not None else ''}), "
        f"checkpoints in {ckpt}")
    init_inputs = None
    if conditioning is not None and init is not None and init.d_x == lay.size:
        # A SEDflow posterior (magnitudes, errors, z) starts the mask-aware one: its
        # errors column carries sigma_eff, the present bits are new inputs.
        nb = len(conditioning.bands)
        init_inputs = list(range(2 * nb + 1)) + [-1] * nb
        log("starting from the given SEDflow flow, its inputs widened to the mask-aware ones")
    flow = ConditionalFlow.fit(warped, x_in, prior.low, prior.high, config=flow_config,
                               checkpoint_dir=ckpt, progress=progress, init=init,
                               init_inputs=init_inputs)
    info = {"training_set": settings[0], "n_train": int(len(x_in))}
    if survey != SDSS_UGRIZ:
        info["survey"] = survey.to_dict()
    if conditioning is not None:
        info.update(conditioning=conditioning.to_dict(), default_floor=float(default_floor))
    if len(settings) > 1:
        info["training_sets"] = settings
    if init_training_sets:
        info["init_training_sets"] = list(init_training_sets)
    post = Posterior(flow, prior, cfg["z_range"],
                     np.column_stack([np.nanmin(mags, axis=0), np.nanmax(mags, axis=0)]),
                     noise=noise, info=info)
    inputs = dict(inputs or {})
    if init is not None:
        inputs["init_weights_sha256"] = flow.init_weights_sha256
    metrics = {"best_val_loss": float(flow.best_val_loss), "best_epoch": int(flow.best_epoch),
               "epochs": len(flow.history)}
    if test_path is not None:
        metrics["test"] = test_coverage(post, test_path, n_samples=n_test_samples)
        log("coverage on held-out galaxies: " + json.dumps(metrics["test"]["coverage"]))
    post.save(out_dir, metrics=metrics, inputs=inputs, recipe=recipe)
    return post, metrics


def combine_posteriors(folders, out_dir, test_path=None, n_test_samples: int = 1000,
                       recipe=None, log=print) -> tuple[Posterior, dict]:
    """Save the equal-weight mixture of several trained posteriors as one.

    Parameters
    ----------
    folders : sequence of path-like
        ``flows/<configuration>`` folders trained on galaxies drawn alike (the same prior,
        redshift range, emulator and noise model; checked), e.g. on one training set, or
        one member fine-tuned on more files of the same kind. A galaxy outside any
        member's training magnitudes is flagged.
    out_dir : path-like
        The ensemble's folder (its ``flow/`` holds a :class:`~provabgs_sbi.inference.ensemble.FlowEnsemble`).
    test_path : path-like, optional
        Held-out training-set file (a seed no member trained on; checked): coverage of the
        central 68% and 95% intervals of the ensemble, and the held-out log-likelihood of
        the ensemble and of each member.

    Returns
    -------
    Posterior, dict
        The ensemble and its metrics (also in its manifest).
    """
    folders = [Path(f) for f in folders]
    out_dir = Path(out_dir)
    if len(folders) < 2:
        raise ValueError(f"combine at least 2 posteriors, got {len(folders)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: write the ensemble to a new folder")
    posts = [Posterior.load(f) for f in folders]
    first = posts[0]
    sets = [p.training_set_settings() for p in posts]
    for f, p, member_sets in zip(folders[1:], posts[1:], sets[1:]):
        same = (p.prior.kind == first.prior.kind
                and np.allclose(p.z_range, first.z_range)
                and all(made_alike(s, sets[0][0]) for s in member_sets))
        if not same:
            raise ValueError(f"{f} was not trained on galaxies drawn like those of "
                             f"{folders[0]} (prior, redshift range, emulator, noise model)")
        if p.info.get("conditioning") != first.info.get("conditioning"):
            raise ValueError(f"{f} and {folders[0]} are conditioned differently (mask-aware "
                             f"or not, or other Conditioning settings or fill values)")
    # Flag galaxies outside any member's training magnitudes.
    ranges = np.array([p.mag_range for p in posts])
    mag_range = np.column_stack([ranges[:, :, 0].max(axis=0), ranges[:, :, 1].min(axis=0)])
    flows = [m for p in posts for m in getattr(p.flow, "members", [p.flow])]
    info = {k: v for k, v in first.info.items() if k != "init_training_sets"}
    info["members"] = [str(f) for f in folders]
    if any(len(member_sets) > 1 or member_sets != sets[0] for member_sets in sets):
        info["member_training_sets"] = sets
        info["member_n_train"] = [int(p.info["n_train"]) for p in posts]
    inits = [init_training_set_settings(p.info) for p in posts]
    if any(inits):
        info["member_init_training_sets"] = inits
    post = Posterior(FlowEnsemble(flows), first.prior, first.z_range, mag_range,
                     noise=first.noise, info=info)
    metrics = {"members": [p.manifest.get("metrics", {}) for p in posts]}
    if test_path is not None:
        # test_coverage first: it refuses galaxies a member's weights have seen.
        metrics["test"] = test_coverage(post, test_path, n_samples=n_test_samples)
        log("coverage on held-out galaxies: " + json.dumps(metrics["test"]["coverage"]))
        _, warped, x, _ = load_training_set(test_path)
        # the file's own x (all bands, the noise model's errors), at floor 0
        x = post.flow_input(x, floor=0.0)
        metrics["test_log_prob"] = {
            "ensemble": float(np.mean(post.flow.log_prob(warped, x))),
            "members": [float(np.mean(m.log_prob(warped, x))) for m in flows],
            "n_test": int(len(x))}
        log("held-out mean log q (warped coordinates): " + json.dumps(metrics["test_log_prob"]))
    post.save(out_dir, metrics=metrics,
              inputs={f"member_{k}": str(f) for k, f in enumerate(folders)}, recipe=recipe)
    return post, metrics


def test_coverage(post: Posterior, test_path, n_samples: int = 1000, n_test: int = 2000,
                  seed: int = 0, regime: Regime | None = None) -> dict:
    """Empirical coverage of central 68% / 95% intervals on held-out galaxies, per parameter.

    The first ``n_test`` galaxies of ``test_path`` get ``n_samples`` posterior draws each;
    the fractions come from :func:`provabgs_sbi.diagnostics.coverage_by_name`, rounded to 4
    decimals.

    For a mask-aware posterior the galaxies are observed afresh in ``regime`` (default: all
    bands, the noise model's errors, floor 0) from the file's noiseless magnitudes
    (:meth:`Conditioning.draw`, seeded by ``seed``), and the mean log q at the truth
    (physical coordinates) is reported too.

    Returns
    -------
    dict
        ``n_test``, ``n_samples`` and ``coverage`` ({"0.68" | "0.95": {parameter: fraction}});
        with a regime, its name and ``mean_log_q``.

    Raises
    ------
    ValueError
        ``test_path`` shares a seed with a training set the posterior's weights have seen
        (:meth:`Posterior.seen_training_set_settings`).
    """
    theta, _, x, settings = load_training_set(test_path)
    check_held_out(test_path, settings, post.seen_training_set_settings())
    theta, x = theta[:n_test], x[:n_test]
    extra, floor = {}, None
    if post.conditioning is not None:
        regime = regime or Regime("all bands, floor 0")
        x, fl, ok = post.conditioning.draw(load_mag_true(test_path)[:n_test],
                                           post.layout.redshift(x),
                                           post.noise or survey_noise_model(post.survey),
                                           rng=np.random.default_rng([seed, 23]), regime=regime)
        theta, x, floor = theta[ok], x[ok], fl[ok]
        extra = {"regime": regime.name,
                 "mean_log_q": round(float(np.mean(post.log_prob(theta, x, floor=floor))), 4)}
    elif regime is not None:
        raise ValueError("regimes need a mask-aware posterior (trained with a Conditioning)")
    samples = post.sample(x, n_samples, seed=seed, floor=floor)
    out = coverage_by_name(samples, theta, PARAM_NAMES, (0.68, 0.95), decimals=4)
    return {"n_test": int(len(x)), "n_samples": int(n_samples), "coverage": out, **extra}
