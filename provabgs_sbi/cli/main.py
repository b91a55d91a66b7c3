"""The ``provabgs-sbi`` command line.

Subcommands
-----------
``run``        the main job on the embedded default (see ``provabgs-sbi run --help``)
``sps build``  build and cache an SSP table (``--backend bc03|fsps``)
``sed``        ugriz nanomaggies and magnitudes of one galaxy, optionally a spectrum plot

TensorFlow's, absl's, XLA's and CUDA's log lines are hidden; ``--verbose`` (before or
after the command) shows them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from provabgs_sbi.flags import NO_SAMPLES
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.parameters import PARAM_NAMES

#: The global flag that shows TensorFlow's log lines (accepted before or after a command).
VERBOSE_FLAGS = ("-v", "--verbose")


def _emulator_of(emulator, flow=DEFAULT_FLOW):
    """``emulator`` if given, else the committed emulator folder that ``flow``'s training
    set was made with (a flow and the emulator it learned are a pair)."""
    if emulator:
        return emulator
    from provabgs_sbi.inference.posterior import emulator_of

    return emulator_of(flow)


def _parse_theta(text: str) -> np.ndarray:
    vals = [float(v) for v in text.replace(",", " ").split()]
    if len(vals) != len(PARAM_NAMES):
        raise SystemExit(f"--theta needs {len(PARAM_NAMES)} numbers in the order "
                         f"{', '.join(PARAM_NAMES)}; got {len(vals)}")
    return np.array(vals)


def cmd_sps_build(args) -> int:
    from provabgs_sbi.model.sps import build_ssp_table, read_ssp_table

    path = build_ssp_table(args.backend, force=args.force)
    table = read_ssp_table(path)
    print(f"{args.backend} SSP table: {path}")
    print(f"  {len(table.log_age)} ages ({table.age_gyr[0]:.2e}-{table.age_gyr[-1]:.2f} Gyr), "
          f"{len(table.metallicity)} metallicities ({table.metallicity[0]:.2e}-"
          f"{table.metallicity[-1]:.3g}), {len(table.wavelength)} wavelengths "
          f"({table.wavelength[0]:.1f}-{table.wavelength[-1]:.3g} A)")
    print(f"  content hash {table.content_hash}")
    return 0


def cmd_sed(args) -> int:
    from provabgs_sbi.model.photometry import BANDS, nanomaggies_to_mag
    from provabgs_sbi.model.sed_model import SEDModel

    theta = _parse_theta(args.theta)
    model = SEDModel(args.sps)
    flux = model.photometry(theta, args.z)[0]
    mags = nanomaggies_to_mag(flux)
    props = {k: float(v[0]) for k, v in model.derived(theta, args.z).items()}
    if args.json:
        print(json.dumps({"theta": dict(zip(PARAM_NAMES, theta.tolist())), "z": args.z,
                          "nanomaggies": dict(zip(BANDS, flux.tolist())),
                          "ab_mag": dict(zip(BANDS, mags.tolist())), "derived": props}, indent=2))
    else:
        print(f"z = {args.z}   SPS = {model.sps_name}")
        print("band  nanomaggies      AB mag")
        for b, f, m in zip(BANDS, flux, mags):
            print(f"{b:>4}  {f:11.5g}  {m:10.4f}")
        for k, v in props.items():
            print(f"{k:>20} = {v:.5g}")
    if args.plot:
        from provabgs_sbi.plots.sed import plot_sed
        wave, lum = model.spectrum(theta, args.z)
        plot_sed(wave, lum[0], args.z, flux, args.plot, title=f"{model.sps_name}, z = {args.z}")
        print(f"wrote {args.plot}")
    return 0


def cmd_emulator_train(args) -> int:
    from provabgs_sbi.emulator.training import EmulatorConfig, train_emulator

    cfg = EmulatorConfig(name=args.name or args.sps, sps=args.sps, n_train=args.n_train,
                         n_val=args.n_val, n_pca=args.n_pca,
                         hidden=tuple(int(h) for h in args.hidden.split(",")),
                         max_minutes=args.max_minutes, seed=args.seed,
                         input_mode=args.input_mode,
                         small_beta1_fraction=args.small_beta1_fraction)
    out = args.out or f"emulator/{cfg.name}"
    _, metrics = train_emulator(cfg, out, work_dir=args.work_dir)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")
    return 0


def cmd_emulator_validate(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.emulator.validate import validate_emulator

    emu = Emulator.load(_emulator_of(args.path))
    metrics = validate_emulator(emu, emu.burst_model, n=args.n, seed=args.seed, plot=args.plot)
    print(json.dumps(metrics, indent=2))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def cmd_data_fetch(args) -> int:
    from provabgs_sbi.io.catalog import load_sdss_sample
    from provabgs_sbi.model.sps import build_ssp_table

    print(f"bc03 SSP table: {build_ssp_table('bc03')}")
    cat = load_sdss_sample()
    print(f"SDSS sample: {len(cat)} galaxies ({cat.source})")
    return 0


def cmd_trainset_make(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.training_set import TrainingSetConfig, make_training_set

    emu = Emulator.load(_emulator_of(args.emulator))
    cfg = TrainingSetConfig(n=args.n, seed=args.seed, prior=args.prior,
                            z_range=(args.z_min, args.z_max), chunk=args.chunk)
    path = make_training_set(args.out, cfg, emu,
                             emulator_id=emu.manifest_sha256,
                             backend=args.backend)
    print(f"wrote {path}")
    return 0


def cmd_flow_train(args) -> int:
    from provabgs_sbi.workflows.train import train_posterior
    from provabgs_sbi.inference.flows import FlowConfig

    overrides = {k: v for k, v in (("max_epochs", args.max_epochs), ("batch_size", args.batch_size),
                                   ("seed", args.seed), ("box_transform", args.box_transform))
                 if v is not None}
    overrides.update(FlowConfig.parse_overrides(args.set))
    cfg = FlowConfig.preset(args.preset, **overrides)
    recipe = ("# Recipe\n\n```\n" + " ".join(["provabgs-sbi", "flow", "train"] + args.argv) +
              "\n```\n\nThe training set was made with the command recorded in "
              "posterior.json (`training_set`).\n")
    init, init_sets = _load_init_flow(args.init) if args.init else (None, None)
    _, metrics = train_posterior(args.trainset, args.out, cfg, test_path=args.test,
                                 checkpoint_dir=args.checkpoint_dir, recipe=recipe,
                                 inputs={"emulator": args.emulator_id or ""}, init=init,
                                 init_training_sets=init_sets)
    print(json.dumps(metrics, indent=2))
    return 0


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


def cmd_flow_combine(args) -> int:
    from provabgs_sbi.workflows.train import combine_posteriors

    recipe = ("# Recipe\n\n```\n" + " ".join(["provabgs-sbi", "flow", "combine"] + args.argv) +
              "\n```\n\nThe members' own recipes are in the members' folders.\n")
    _, metrics = combine_posteriors(args.members, args.out, test_path=args.test,
                                    recipe=recipe)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_posterior(args) -> int:
    from provabgs_sbi.workflows.fit import fit_catalog
    from provabgs_sbi.inference.posterior import Posterior

    post = Posterior.load(args.flow)
    cat = _read_cli_catalog(args, z_range=tuple(post.z_range))
    rows = slice(None) if args.rows is None else _parse_rows(args.rows, len(cat))
    if args.rows is not None:
        cat = cat.subset(rows)
    model = None
    if not args.no_ppc:
        from provabgs_sbi.emulator import Emulator

        model = Emulator.load(_emulator_of(args.emulator, args.flow))
    out = fit_catalog(post, cat, args.out, n_samples=args.n_samples, seed=args.seed, model=model)
    flags = post.flags(cat.to_x())
    print(f"wrote {out}: {len(cat)} galaxies x {args.n_samples} samples; flags: "
          f"{post.describe_flags(flags)}")
    return 0


def _read_cli_catalog(args, z_range=None):
    from provabgs_sbi.io.catalog import read_catalog

    split = lambda s: s.split(",") if s else None  # noqa: E731
    return read_catalog(args.catalog, preset=args.preset, mag_cols=split(args.mag_cols),
                        err_cols=split(args.err_cols), flux_cols=split(args.flux_cols),
                        ivar_cols=split(args.ivar_cols), z_col=args.z_col, z_range=z_range)


def _add_catalog_args(p) -> None:
    p.add_argument("catalog", help="FITS/HDF5/CSV table (NSA or SDSS layout, or give columns)")
    p.add_argument("--preset", choices=("nsa", "sdss"))
    p.add_argument("--mag-cols", help="five AB magnitude columns, comma separated")
    p.add_argument("--err-cols", help="five magnitude-error columns")
    p.add_argument("--flux-cols", help="five AB nanomaggy columns")
    p.add_argument("--ivar-cols", help="five inverse-variance columns")
    p.add_argument("--z-col", help="redshift column")


def cmd_mcmc(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.baselines.mcmc import run_mcmc_catalog

    pairs_with = DEFAULT_FLOW
    if args.precondition and (Path(args.precondition) / "posterior.json").exists():
        pairs_with = args.precondition
    emu = Emulator.load(_emulator_of(args.emulator, pairs_with))
    model = emu
    if args.direct:
        from provabgs_sbi.model.sed_model import SEDModel

        model = SEDModel(emu.info["sps"])
    cat = _read_cli_catalog(args, z_range=emu.z_range)
    rows = None if args.rows is None else _parse_rows(args.rows, len(cat))
    flow = None
    if args.precondition:
        from provabgs_sbi.inference.ensemble import load_flow

        folder = Path(args.precondition)     # a posterior folder (flows/bc03) or a flow
        flow = load_flow(folder / "flow" if (folder / "posterior.json").exists() else folder)
    res = run_mcmc_catalog(cat, rows, model, args.out, n_walkers=args.walkers,
                           n_steps=args.steps, burn_in=args.burn_in, seed=args.seed,
                           likelihood=args.likelihood, derived_model=emu.burst_model,
                           precondition=flow)
    import h5py

    with h5py.File(args.out, "r") as fh:
        groups = [fh[k] for k in fh if k.startswith("row_")]
        conv = sum(bool(g.attrs.get("converged", False)) for g in groups)
    print(f"wrote {args.out}: {len(res['done'])} fitted now, {len(res['skipped'])} already "
          f"there, {len(res['failed'])} failed; {conv} of {len(groups)} rows converged "
          "(n_post >= 50 tau and split-R-hat < 1.05 for every parameter)")
    return 0


def cmd_validate(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.workflows.validate import validate_posterior

    post = Posterior.load(args.flow)
    emu = Emulator.load(_emulator_of(args.emulator, args.flow))
    real = None
    if args.mcmc_real > 0:
        from provabgs_sbi.io.catalog import load_sdss_sample

        real = load_sdss_sample(z_range=tuple(post.z_range))
    mcmc_kwargs = {"n_walkers": args.mcmc_walkers, "n_steps": args.mcmc_steps,
                   "burn_in": args.mcmc_burn_in, "precondition": args.mcmc_precondition}
    res = validate_posterior(post, emu, args.out, n_test=args.n_test, n_samples=args.n_samples,
                             seed=args.seed, n_mcmc_test=args.mcmc_test,
                             n_mcmc_real=args.mcmc_real, real_catalog=real,
                             mcmc_kwargs=mcmc_kwargs, test_path=args.test_set,
                             allow_other_emulator=args.other_emulator)
    _print_validation(res)
    print(f"wrote {args.out}/validation.json and PNGs")
    return 0


def _print_validation(res) -> None:
    print(f"{'parameter':>22} {'cov68':>6} {'cov95':>6} {'pp in 99% band':>14} {'pp p':>6} "
          f"{'SBC out':>8} {'z mean':>7} {'z sd':>6}")
    for name, p in res["parameters"].items():
        print(f"{name:>22} {p['coverage']['0.68']:6.3f} {p['coverage']['0.95']:6.3f} "
              f"{str(p['pp_inside_band']):>14} {p['pp_pvalue']:6.3f} {p['sbc_outside_band']:8d} "
              f"{p['zscore_mean']:+7.3f} {p['zscore_std']:6.3f}")
    print(f"SBC: {res['sbc_band']['expected_outside']:.2f} bins expected outside by chance; "
          f"TARP p-value {res['tarp']['p_value']:.3f}")
    mc = res.get("mcmc", {})
    for subset in ("test", "real"):
        if subset not in mc:
            continue
        c, e = mc[subset], mc["importance"][subset]
        fmt = ", ".join
        print(f"{subset} galaxies ({c['n_galaxies']}): mean |d median| / sigma of the reference")
        print(f"  ANPE vs MCMC ({c['converged']} converged): "
              + fmt(f"{k} {v:.2f}" for k, v in c["median_offset_mean"].items()))
        print(f"  ANPE vs importance sampling ({e['reliable']} reliable): "
              + fmt(f"{k} {v:.2f}" for k, v in e["median_offset_mean"].items()))
        between = mc["mcmc_vs_importance"][subset].get("median_offset_mean")
        print("  MCMC vs importance sampling: "
              + (fmt(f"{k} {v:.2f}" for k, v in between.items()) if between
                 else "no reliable importance-sampled posterior"))


#: Figure 1's galaxies drawn like the training set: validate_flow.test_set's seed offset
#: keeps them apart from every training set (seeds < 10,000) and from validate's (seed 0).
FIGURE1_N, FIGURE1_SEED = 100_000, 1


def cmd_figures(args) -> int:
    import h5py

    from provabgs_sbi.io.catalog import load_sdss_sample
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.plots.paper import plot_training_vs_real
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.inference.training_set import load_training_set

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    post = Posterior.load(args.flow)
    emu = Emulator.load(_emulator_of(args.emulator, args.flow))
    cat = load_sdss_sample(z_range=tuple(post.z_range))
    # Figure 1: the training set against the real sample (posterior medians of log M*, beta1).
    trainset = args.trainset
    if not trainset:
        from provabgs_sbi.workflows.validate import test_set

        trainset, _ = test_set(post, emu, n_test=FIGURE1_N, seed=FIGURE1_SEED)
    theta, _, x, _ = load_training_set(trainset)
    real_x = cat.to_x()
    if args.fit and Path(args.fit).exists():
        with h5py.File(args.fit, "r") as fh:
            summ = fh["summary"][:]
        med = np.full((len(summ), 12), np.nan)
        med[:, 0], med[:, 1] = summ["log_mstar_p50"], summ["beta1_p50"]
    else:
        ok = post.flags(real_x) & NO_SAMPLES == 0
        med = np.full((len(real_x), 12), np.nan)
        med[ok] = np.median(post.sample(real_x[ok], 200, seed=args.seed, strict=False), axis=1)
    plot_training_vs_real(theta, x, med, real_x, out / "fig1_training_vs_sdss.png")
    print(f"wrote {out / 'fig1_training_vs_sdss.png'}")
    # Figures 2-4 and the ANPE-MCMC comparison, on fresh test galaxies of the flow's emulator.
    args.n_samples = 1000
    args.test_set, args.other_emulator = None, False
    return cmd_validate(args)


def _parse_rows(text, n):
    if ":" in text:
        a, b = text.split(":")
        return np.arange(int(a or 0), min(int(b or n), n))
    return np.array([int(r) for r in text.split(",")])


def cmd_run(args) -> int:
    from provabgs_sbi.workflows.main_job import run_main_job

    return run_main_job(out=args.out, n_samples=args.n_samples, flow_dir=args.flow,
                        emulator_dir=args.emulator, limit=args.limit)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_mcmc_validation_args(p) -> None:
    from provabgs_sbi.workflows.compare_mcmc import MCMC_DEFAULTS, PRECONDITION_DEFAULT

    p.add_argument("--mcmc-test", type=int, default=20,
                   help="test galaxies also fitted by MCMC and by importance sampling "
                        "(default 20; 0: none)")
    p.add_argument("--mcmc-real", type=int, default=5,
                   help="SDSS galaxies fitted by MCMC and by importance sampling "
                        "(default 5; 0: none)")
    p.add_argument("--mcmc-walkers", type=int, default=MCMC_DEFAULTS["n_walkers"])
    p.add_argument("--mcmc-steps", type=int, default=MCMC_DEFAULTS["n_steps"])
    p.add_argument("--mcmc-burn-in", type=int, default=MCMC_DEFAULTS["burn_in"])
    p.add_argument("--mcmc-precondition", choices=("none", "flow"),
                   default=PRECONDITION_DEFAULT,
                   help="'flow': sample in the base-noise space of the validated flow "
                        "(NeuTra; the same posterior, fewer iterations per independent draw but "
                        "~2x the cost per iteration); 'none': zeus in the "
                        "warped parameters, as the paper (default %(default)s)")


EMULATOR_HELP = ("emulator folder (default: the committed one the posterior's training set "
                 "was made with)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="provabgs-sbi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(*VERBOSE_FLAGS, action="store_true",
                        help="show TensorFlow's, absl's, XLA's and CUDA's log lines")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="the main job on the embedded default")
    p.add_argument("--out", default="out", help="output folder (default ./out)")
    p.add_argument("--n-samples", type=int, default=1000, help="posterior samples per galaxy")
    p.add_argument("--flow", default=str(DEFAULT_FLOW), help="posterior folder (default %(default)s)")
    p.add_argument("--emulator", help=EMULATOR_HELP)
    p.add_argument("--limit", type=_positive_int, metavar="N",
                   help="fit only the first N galaxies of the sample (a quick try; with N a "
                        "multiple of 200, the numbers of those rows in a full run)")
    p.set_defaults(func=cmd_run)

    sps = sub.add_parser("sps", help="SSP tables").add_subparsers(dest="sps_command", required=True)
    p = sps.add_parser("build", help="build and cache an SSP table")
    p.add_argument("--backend", choices=("bc03", "fsps"), default="bc03")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_sps_build)

    emu = sub.add_parser("emulator", help="train and validate emulators").add_subparsers(
        dest="emulator_command", required=True)
    p = emu.add_parser("train", help="train an emulator of the SED model for one SPS configuration")
    p.add_argument("--sps", default="bc03")
    p.add_argument("--name", help="artifact name (default: the SPS name)")
    p.add_argument("--n-train", type=int, default=1_000_000)
    p.add_argument("--n-val", type=int, default=20_000)
    p.add_argument("--n-pca", type=int, default=96)
    p.add_argument("--hidden", default="256,256,256,256", help="hidden widths, comma separated")
    p.add_argument("--max-minutes", type=float, default=60.0, help="MLP training budget")
    p.add_argument("--input-mode", default="warped", choices=("warped", "warped_logbeta1"),
                   help="network inputs: warped adds nothing; warped_logbeta1 adds "
                        "log10(beta1 + 1e-5), for accuracy where the first NMF component fades")
    p.add_argument("--small-beta1-fraction", type=float, default=0.0,
                   help="fraction of training spectra drawn with log10 beta1 ~ U(-5, 0) "
                        "rather than u1 ~ U(0, 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="artifact folder (default emulator/<name>)")
    p.add_argument("--work-dir", help="where the training spectra go (default: the cache)")
    p.set_defaults(func=cmd_emulator_train)
    p = emu.add_parser("validate", help="accuracy report on held-out prior draws")
    p.add_argument("path", nargs="?",
                   help="emulator folder (default: the default posterior's emulator)")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--plot", default="emulator_errors.png", help="PNG of the error percentiles")
    p.set_defaults(func=cmd_emulator_validate)

    data = sub.add_parser("data", help="third-party data").add_subparsers(dest="data_command",
                                                                          required=True)
    p = data.add_parser("fetch", help="download (checksum verified) and cache the bc03 grid and "
                                      "the SDSS sample")
    p.set_defaults(func=cmd_data_fetch)

    ts = sub.add_parser("trainset", help="ANPE training sets").add_subparsers(
        dest="trainset_command", required=True)
    p = ts.add_parser("make", help="prior -> emulator ugriz -> noise; chunked, resumable HDF5")
    p.add_argument("--n", type=int, required=True, help="accepted galaxies wanted")
    p.add_argument("--out", required=True, help="HDF5 file (resumed if it exists)")
    p.add_argument("--emulator", help="emulator folder (default: the default posterior's)")
    p.add_argument("--prior", default="default", choices=("default", "sedflow"))
    p.add_argument("--z-min", type=float, default=0.0)
    p.add_argument("--z-max", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "tf"))
    p.set_defaults(func=cmd_trainset_make)

    fl = sub.add_parser("flow", help="train the posterior flow").add_subparsers(
        dest="flow_command", required=True)
    p = fl.add_parser("train", help="fit the conditional flow on a training set")
    p.add_argument("trainset", nargs="+",
                   help="training-set file(s); several (made alike, other seeds) are joined")
    p.add_argument("--out", required=True, help="a new posterior folder, e.g. flows/<name>")
    p.add_argument("--preset", default="default")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--box-transform", choices=("logit", "probit", "plateau"),
                   help="map from the prior box to the flow's space (default: the preset's)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="other FlowConfig fields, e.g. lr_patience=3 weight_decay=0.3 "
                        "transform=spline")
    p.add_argument("--checkpoint-dir",
                   help="checkpoints, resumed if present (default: <first trainset>.checkpoints)")
    p.add_argument("--test", help="held-out training-set file for the coverage metrics")
    p.add_argument("--emulator-id", help="recorded in the manifest")
    p.add_argument("--init", metavar="FOLDER",
                   help="fine-tune this trained flow (a posterior folder with one flow, or a "
                        "saved flow such as flows/bc03/flow/member_0) instead of a random start")
    p.set_defaults(func=cmd_flow_train)
    p = fl.add_parser("combine", help="save the equal-weight mixture of trained posteriors "
                                      "(galaxies drawn alike) as one")
    p.add_argument("members", nargs="+", help="flows/<configuration> folders")
    p.add_argument("--out", required=True, help="a new folder")
    p.add_argument("--test", help="held-out training-set file for the coverage metrics")
    p.set_defaults(func=cmd_flow_combine)

    p = sub.add_parser("posterior", help="posterior samples for a catalog")
    _add_catalog_args(p)
    p.add_argument("--flow", default=str(DEFAULT_FLOW))
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--out", required=True, help="output HDF5")
    p.add_argument("--rows", help="rows to fit: 'a:b' or 'i,j,k'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--emulator", help="model of the posterior predictive check; "
                                      + EMULATOR_HELP)
    p.add_argument("--no-ppc", action="store_true", help="skip the posterior predictive check")
    p.set_defaults(func=cmd_posterior)

    p = sub.add_parser("mcmc", help="zeus MCMC of catalog rows with the emulator (resumable)")
    _add_catalog_args(p)
    p.add_argument("--rows", help="rows to fit: 'a:b' or 'i,j,k' (default all)")
    p.add_argument("--out", required=True, help="output HDF5 (resumed if it exists)")
    p.add_argument("--emulator", help="emulator folder (default: that of the --precondition "
                                      "posterior, else of the default posterior)")
    p.add_argument("--direct", action="store_true",
                   help="the direct SED model instead of the emulator (slow; checks the emulator)")
    p.add_argument("--walkers", type=int, default=30)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--burn-in", type=int, default=2000)
    p.add_argument("--likelihood", choices=("flux", "mag"), default="flux")
    p.add_argument("--precondition", metavar="FLOW",
                   help="a trained flow folder (e.g. flows/bc03): sample in its base-noise "
                        "space (NeuTra; the same posterior, fewer iterations per independent "
                        "draw but ~2x the cost per iteration)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_mcmc)

    p = sub.add_parser("validate", help="calibration of a posterior on fresh test galaxies")
    p.add_argument("flow", nargs="?", default=str(DEFAULT_FLOW))
    p.add_argument("--emulator", help=EMULATOR_HELP)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="validation")
    p.add_argument("--test-set", metavar="FILE",
                   help="validate on the first --n-test galaxies of this held-out training-set "
                        "file (e.g. the recipe's) instead of drawing new ones")
    p.add_argument("--other-emulator", action="store_true",
                   help="accept an --emulator (or --test-set file) other than the one the "
                        "flow's training set was made with: its galaxies then test the flow on "
                        "another simulator (emulator systematics), not its calibration")
    _add_mcmc_validation_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("figures", help="SEDflow's figures 1-4 and the ANPE-MCMC comparison")
    p.add_argument("--out", default="docs/figures")
    p.add_argument("--flow", default=str(DEFAULT_FLOW))
    p.add_argument("--emulator", help=EMULATOR_HELP)
    p.add_argument("--trainset",
                   help="training-set file for figure 1 (default: 100,000 galaxies drawn like "
                        "the flow's training set, with a seed no training set uses; cached)")
    p.add_argument("--fit", default="out/sdss_posteriors.h5",
                   help="posterior file of the SDSS sample (figure 1; fitted here if missing)")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    _add_mcmc_validation_args(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("sed", help="photometry (and a spectrum plot) of one galaxy")
    p.add_argument("--theta", required=True,
                   help="12 numbers: " + " ".join(PARAM_NAMES) + " (comma or space separated)")
    p.add_argument("--z", type=float, required=True, help="redshift (> 0)")
    p.add_argument("--sps", default="bc03", help="SPS configuration (default bc03)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the rest-frame spectrum and filters")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_sed)
    _accept_verbose_after_commands(parser)
    return parser


def _accept_verbose_after_commands(parser: argparse.ArgumentParser) -> None:
    """Let every command take ``--verbose`` too (``provabgs-sbi run --verbose``); given
    there, it sets the same flag as before the command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument(*VERBOSE_FLAGS, action="store_true",
                                     default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _accept_verbose_after_commands(command)


def recipe_arguments(argv: list[str]) -> list[str]:
    """The arguments after a two-word command (``flow train ...``), as RECIPE.md files
    record them: without ``--verbose``, which changes no result."""
    return [a for a in argv if a not in VERBOSE_FLAGS][2:]


def main(argv=None) -> int:
    """Run ``provabgs-sbi [--verbose] COMMAND ...``; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name. None (the console script, ``python -m
        provabgs_sbi.cli``): this process's own, and unless ``--verbose`` the console is
        quieted (:func:`provabgs_sbi.cli.console.quiet_console`) before the command imports
        TensorFlow. Given from Python, the calling process's console is left alone.
    """
    own_process = argv is None
    argv = list(sys.argv[1:] if own_process else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if own_process and not args.verbose:
        from provabgs_sbi.cli.console import quiet_console

        quiet_console()
    args.argv = recipe_arguments(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"provabgs-sbi: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
