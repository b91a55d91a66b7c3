"""The ``provabgs-sbi flow ...`` commands: train, floor, zrange, combine (argparse
namespaces in, exit codes out; the work is in :mod:`provabgs_sbi.workflows`)."""
from __future__ import annotations

import json
from pathlib import Path

from provabgs_sbi.cli.commands import _emulator_of, _survey_catalog


def cmd_flow_train(args) -> int:
    from provabgs_sbi.workflows.train import train_posterior
    from provabgs_sbi.inference.flows import FlowConfig

    overrides = {k: v for k, v in (("max_epochs", args.max_epochs), ("batch_size", args.batch_size),
                                   ("seed", args.seed), ("box_transform", args.box_transform))
                 if v is not None}
    overrides.update(FlowConfig.parse_overrides(args.set))
    if args.whiten_mags:
        # the magnitudes are x's first columns in both SEDflow and mask-aware inputs
        n_bands = len(_trainset_survey(args.trainset[0]).bands)
        overrides["whiten_columns"] = list(range(n_bands))
    # "auto": the default procedure, resolved from the number of galaxies (train_posterior).
    cfg = None if args.preset == "auto" else FlowConfig.preset(args.preset, **overrides)
    recipe = ("# Recipe\n\n```\n" + " ".join(["provabgs-sbi", "flow", "train"] + args.argv) +
              "\n```\n\nThe training set was made with the command recorded in "
              "posterior.json (`training_set`).\n")
    init, init_sets = _load_init_flow(args.init) if args.init else (None, None)
    conditioning = None
    if args.mask_aware is not None:
        conditioning = _conditioning(args.mask_aware, _trainset_survey(args.trainset[0]))
    elif args.default_floor:
        raise ValueError("--default-floor needs --mask-aware (a posterior trained with floors)")
    _, metrics = train_posterior(args.trainset, args.out, cfg, test_path=args.test,
                                 checkpoint_dir=args.checkpoint_dir, recipe=recipe,
                                 inputs={"emulator": args.emulator_id or ""}, init=init,
                                 init_training_sets=init_sets, conditioning=conditioning,
                                 default_floor=args.default_floor,
                                 auto_overrides=overrides if cfg is None else None)
    print(json.dumps(metrics, indent=2))
    return 0


def _trainset_survey(path):
    """The survey a training-set file was made for."""
    from provabgs_sbi.inference.training_set import read_settings, training_set_survey

    return training_set_survey(read_settings(path))


def _conditioning(pairs, survey="sdss_ugriz"):
    """A Conditioning of ``survey`` (its bands, floor range, minimum bands) with other
    fields from ``FIELD=VALUE`` strings (JSON values; bare words as strings)."""
    from provabgs_sbi.inference.conditioning import Conditioning

    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in Conditioning.__dataclass_fields__:
            raise ValueError(f"--mask-aware takes FIELD=VALUE with FIELD one of "
                             f"{', '.join(Conditioning.__dataclass_fields__)}; got {pair!r}")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return Conditioning.for_survey(survey, **fields)


def _load_init_flow(path):
    """The single flow to fine-tune, a saved ConditionalFlow folder (e.g. a mixture's
    ``flow/member_0``) or a posterior folder holding one flow, and the settings of the
    training sets it was fitted to (None when they are not recorded beside it)."""
    from provabgs_sbi.inference.flows import ConditionalFlow
    from provabgs_sbi.inference.posterior import Posterior, seen_training_set_settings

    path = Path(path)
    if not (path / "weights.npz").exists():
        post = Posterior.load(path)
        if not isinstance(post.flow, ConditionalFlow):
            members = ", ".join(f"{path}/flow/member_{i}" for i in range(len(post.flow.members)))
            raise ValueError(f"{path} holds a mixture of flows: pass one member to --init "
                             f"({members})")
        return post.flow, post.seen_training_set_settings()
    flow = ConditionalFlow.load(path)
    if path.name == "flow":                                  # <posterior>/flow
        folder, member = path.parent, None
    elif path.parent.name == "flow" and path.name.startswith("member_"):
        folder, member = path.parent.parent, int(path.name.split("_")[1])
    else:
        return flow, None
    if not (folder / "posterior.json").exists():
        return flow, None
    info = json.loads((folder / "posterior.json").read_text())
    return flow, seen_training_set_settings(info, member)


def cmd_flow_floor(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.workflows.floor import FLOOR_GRID, choose_floor, set_default_floor
    from provabgs_sbi.workflows.validate import describe_floor

    post = Posterior.load(args.folder)
    if post.conditioning is None:
        raise ValueError(f"{args.folder} was trained without floors (flow train --mask-aware)")
    emulator = Emulator.load(_emulator_of(args.emulator, args.folder))
    cat = _survey_catalog(post)
    if cat is None:
        raise ValueError(f"survey {post.survey.name!r} has no catalog of its own to choose a "
                         "floor from")
    res = choose_floor(post, emulator, cat, args.test, out_dir=args.figures,
                       floors=args.floors or FLOOR_GRID, target=args.target,
                       n_test=args.n_test, per_band=args.per_band)
    print(json.dumps(res, indent=1))
    if not args.dry_run:
        set_default_floor(args.folder, res["chosen"], res,
                          command=" ".join(["provabgs-sbi", "flow", "floor"] + args.argv))
        print(f"{args.folder}: default floor {describe_floor(res['chosen'], post.layout.bands)}"
              + ("" if res["met"] else " (the target was not met on the grid)"))
    return 0


def cmd_flow_zrange(args) -> int:
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.workflows.zrange import redshift_calibration, restrict_redshift, write_report

    post = Posterior.load(args.folder)
    res = redshift_calibration(post, args.test, n_per_bin=args.n_per_bin, n_samples=args.n_samples)
    if args.figures:
        write_report(res, args.figures)
    for lo, hi, n, frac, pv, ok in zip(res["edges"][:-1], res["edges"][1:], res["n"],
                                       res["outlier_fraction"], res["p_value"], res["passes"]):
        print(f"z {lo:g}-{hi:g}: {n} galaxies, {'-' if frac is None else f'{100 * frac:.1f}%'} "
              f"with |z-score| > {res['z_limit']:g}"
              + ("" if pv is None else f" (p = {pv:.3g} against {100 * res['max_outliers']:g}%)")
              + f"  {'ok' if ok else 'FAILS'}")
    lowest = res["z_min"]
    if lowest <= post.z_range[0]:
        print(f"{args.folder}: calibrated down to its lowest redshift {post.z_range[0]:g}")
    elif args.dry_run:
        print(f"{args.folder}: would fit z >= {lowest:g} only")
    else:
        restrict_redshift(args.folder, lowest, res,
                          command=" ".join(["provabgs-sbi", "flow", "zrange"] + args.argv))
        print(f"{args.folder}: fits z >= {lowest:g} only (below, FLAG_Z_RANGE)")
    return 0


def cmd_flow_combine(args) -> int:
    from provabgs_sbi.workflows.train import combine_posteriors

    recipe = ("# Recipe\n\n```\n" + " ".join(["provabgs-sbi", "flow", "combine"] + args.argv) +
              "\n```\n\nThe members' own recipes are in the members' folders.\n")
    _, metrics = combine_posteriors(args.members, args.out, test_path=args.test,
                                    recipe=recipe)
    print(json.dumps(metrics, indent=2))
    return 0
