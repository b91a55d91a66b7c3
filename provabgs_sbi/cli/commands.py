"""The commands of ``provabgs-sbi``: each takes the parsed arguments, calls the library
(:mod:`provabgs_sbi.workflows` and below) and prints what it did; returns the exit status.
The parser is :func:`provabgs_sbi.cli.main.build_parser`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.flags import NO_SAMPLES
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.parameters import PARAM_NAMES


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
                         small_beta1_fraction=args.small_beta1_fraction,
                         wave_min=args.wave_min, wave_max=args.wave_max, survey=args.survey,
                         exact_lines=args.exact_lines, init_from=args.init_from,
                         pixel_weight_power=args.pixel_weight_power,
                         pixel_weight_max=args.pixel_weight_max,
                         pixel_weight_wave=args.pixel_weight_wave,
                         **({"phases": args.phases} if args.phases else {}))
    out = args.out or f"emulator/{cfg.name}"
    _, metrics = train_emulator(cfg, out, work_dir=args.work_dir)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")
    return 0


def cmd_emulator_validate(args) -> int:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.emulator.validate import validate_emulator

    emu = Emulator.load(_emulator_of(args.path))
    metrics = validate_emulator(emu, emu.burst_model, n=args.n, seed=args.seed, plot=args.plot,
                                survey=args.survey)
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
    from provabgs_sbi.inference.noise import NoiseModel
    from provabgs_sbi.inference.training_set import TrainingSetConfig, make_training_set
    from provabgs_sbi.model.survey import get_survey

    survey = get_survey(args.survey)
    z_lo = survey.z_range[0] if args.z_min is None else args.z_min
    z_hi = survey.z_range[1] if args.z_max is None else args.z_max
    noise = NoiseModel.load(args.noise) if args.noise else None
    emu = Emulator.load(_emulator_of(args.emulator))
    cfg = TrainingSetConfig(n=args.n, seed=args.seed, prior=args.prior,
                            z_range=(z_lo, z_hi), chunk=args.chunk, survey=survey)
    path = make_training_set(args.out, cfg, emu, noise=noise,
                             emulator_id=emu.manifest_sha256,
                             backend=args.backend)
    print(f"wrote {path}")
    return 0


def cmd_noise_fit(args) -> int:
    from provabgs_sbi.workflows.noise_fit import fit_survey_noise_model

    model, path = fit_survey_noise_model(args.survey, out=args.out, figure=args.figure)
    used = model.provenance.get("n_rows_used_per_band", {})
    for b, band in enumerate(model.bands):
        print(f"{band}: {len(model.centres[b])} bins, {used.get(band, '?')} galaxies, "
              f"{model.mag_range[b][0]:.2f}-{model.mag_range[b][1]:.2f} mag")
    print(f"wrote {path}")
    return 0


def cmd_noise_table(args) -> int:
    from provabgs_sbi.inference.noise import NoiseModel
    from provabgs_sbi.model.survey import get_survey

    model = NoiseModel.from_sigma_table(args.table, scatter_fraction=args.scatter_fraction)
    if args.survey:
        survey = get_survey(args.survey)
        if model.bands != survey.bands:
            raise ValueError(f"{args.table} has bands {list(model.bands)}, survey "
                             f"{survey.name!r} has {list(survey.bands)} (same order needed)")
    path = model.save(args.out)
    for b, band in enumerate(model.bands):
        lo, hi = model.mag_range[b]
        print(f"{band}: {len(model.centres[b])} nodes, {lo:.2f}-{hi:.2f} mag, "
              f"sigma {model.mu[b].min():.3g}-{model.mu[b].max():.3g} mag")
    print(f"wrote {path}")
    return 0


def _survey_catalog(post):
    """The real catalog of a posterior's survey: the SDSS sample (ugriz) or the kcorrect
    sample in ten bands (``galex_sdss_2mass``); None for a survey without one."""
    z_range = tuple(post.z_range)
    if post.survey.catalog == "kcorrect_multiband":
        from provabgs_sbi.io.kcorrect_bands import load_kcorrect_multiband

        return load_kcorrect_multiband().to_catalog(z_range=z_range)
    if post.survey.name == "sdss_ugriz":
        from provabgs_sbi.io.catalog import load_sdss_sample

        return load_sdss_sample(z_range=z_range)
    return None


def cmd_posterior(args) -> int:
    import h5py

    from provabgs_sbi.flags import count_flags
    from provabgs_sbi.workflows.fit import check_output_path, fit_catalog
    from provabgs_sbi.inference.posterior import Posterior

    check_output_path(args.out, args.overwrite, inputs=(args.catalog,))
    post = Posterior.load(args.flow)
    if args.floor is not None:
        post.check_floor(args.floor)           # refused before any work
    rows = None
    survey = None if post.survey.name == "sdss_ugriz" else post.survey.to_dict()
    if args.rows is None:
        cat = _cli_catalog_file(args, z_range=tuple(post.z_range), survey=survey)  # by chunks
    else:
        cat = _read_cli_catalog(args, z_range=tuple(post.z_range), survey=survey)
        rows = _parse_rows(args.rows, len(cat))
        cat = cat.subset(rows)
    model = None
    if not args.no_ppc:
        from provabgs_sbi.emulator import Emulator

        model = Emulator.load(_emulator_of(args.emulator, args.flow))
    client = _dask_client(args.scheduler)
    try:
        out = fit_catalog(post, cat, args.out, n_samples=args.n_samples, seed=args.seed,
                          model=model, rows=rows, overwrite=args.overwrite, floor=args.floor,
                          n_store=args.n_store, chunk=args.chunk, client=client)
    finally:
        if client is not None:
            client.close()
    with h5py.File(out, "r") as fh:
        flags = fh["summary"]["flags"]
    stored = "" if args.n_store is None else f" ({args.n_store} stored)"
    print(f"wrote {out}: {len(cat)} galaxies x {args.n_samples} samples{stored}; flags: "
          f"{count_flags(flags)}")
    return 0


def _dask_client(scheduler):
    """None (fit in this process), a LocalCluster's client ('local', 'local:N') or a client
    of the scheduler at an address."""
    if not scheduler:
        return None
    if scheduler == "local" or scheduler.startswith("local:"):
        from provabgs_sbi.workflows.fit_dask import local_client

        n = scheduler.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise ValueError(f"--scheduler local:N needs N >= 1, got {scheduler!r}")
        return local_client(int(n) if n else None)
    from distributed import Client

    return Client(scheduler)


def _cli_catalog_file(args, z_range=None, survey=None):
    """The catalog as a CatalogFile (FITS, HDF5 and Parquet read a chunk at a time)."""
    from provabgs_sbi.io.catalog_stream import CatalogFile

    return CatalogFile(args.catalog, _catalog_options(args, z_range, survey))


def _read_cli_catalog(args, z_range=None, survey=None):
    from provabgs_sbi.io.catalog import read_catalog

    return read_catalog(args.catalog, **_catalog_options(args, z_range, survey))


def _catalog_options(args, z_range=None, survey=None) -> dict:
    """The options of :func:`~provabgs_sbi.io.catalog.read_catalog` the command line gives:
    layout, columns, trained redshift range, where the table is in the file, and the
    survey (a dict of :meth:`Survey.to_dict`) of a posterior of other bands than ugriz."""
    split = lambda s: s.split(",") if s else None  # noqa: E731
    options = {"preset": args.preset, "mag_cols": split(args.mag_cols),
               "err_cols": split(args.err_cols), "flux_cols": split(args.flux_cols),
               "ivar_cols": split(args.ivar_cols), "z_col": args.z_col,
               "z_range": None if z_range is None else list(z_range), "survey": survey}
    return {**{k: v for k, v in options.items() if v is not None}, **_table_location(args)}


def _table_location(args) -> dict:
    """``hdu`` (FITS) and ``path`` (HDF5) of the table, when given on the command line."""
    where = {}
    hdu = getattr(args, "hdu", None)
    if hdu is not None:
        where["hdu"] = int(hdu) if str(hdu).isdigit() else hdu
    if getattr(args, "table_path", None):
        where["path"] = args.table_path
    return where


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
    sdss = post.survey.name == "sdss_ugriz"      # the SDSS sample is a catalog of ugriz only
    # the MCMC comparison is built for ugriz: by default only SDSS posteriors run it
    if args.mcmc_test is None:
        args.mcmc_test = 20 if sdss else 0
    if args.mcmc_real is None:
        args.mcmc_real = 5 if sdss else 0
    if args.mcmc_real > 0 or (post.conditioning is not None and not args.no_catalog_checks):
        # (the kcorrect sample in ten bands also gives the regime of its band patterns)
        real = _survey_catalog(post)
    mcmc_kwargs = {"n_walkers": args.mcmc_walkers, "n_steps": args.mcmc_steps,
                   "burn_in": args.mcmc_burn_in, "precondition": args.mcmc_precondition}
    res = validate_posterior(post, emu, args.out, n_test=args.n_test, n_samples=args.n_samples,
                             seed=args.seed, n_mcmc_test=args.mcmc_test,
                             n_mcmc_real=args.mcmc_real, real_catalog=real,
                             mcmc_kwargs=mcmc_kwargs, test_path=args.test_set,
                             allow_other_emulator=args.other_emulator,
                             check_catalog=not args.no_catalog_checks)
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
    for name, r in res.get("regimes", {}).items():
        print(f"regime {name!r} ({r['n_test']} galaxies): max |coverage - nominal| "
              f"{r['max_coverage_error']:.3f}, mean log q at the truth {r['mean_log_q']:.3f}")
    cc = res.get("catalog_checks")
    if cc:
        one = cc["one_band_removed"]
        print(f"real catalog ({cc['n_catalog']} galaxies, floor {cc['floor']} mag): "
              f"{100 * cc['frac_sigma_flagged']:.2f}% flagged sigma_above_noise_model, "
              f"{100 * cc['frac_poor_fit']:.2f}% of {cc['n_fitted']} fitted flagged poor fit; "
              f"one band removed: {100 * one['frac_fitted']:.2f}% of {one['n']} fitted")
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
    """Row indices of ``--rows`` ('a:b', 'a:', ':b' or 'i,j,k') in a table of ``n`` rows.

    Indices count from 0 and must be inside the table, non-negative (Python's negative
    indices are refused: '-2:' would be read as an option, and a mix of negative and
    positive indices can name a row twice) and distinct; a range must not be empty.

    Raises
    ------
    ValueError
        With a one-line message saying what is wrong and the table's size.
    """
    where = f"--rows {text!r} on a table of {n} rows (0 to {n - 1})"
    try:
        if ":" in text:
            a, b = text.split(":")
            a, b = int(a or 0), int(b) if b else n
            if a < 0 or b < 0 or b > n or a >= b:
                raise ValueError(f"{where}: need 0 <= a < b <= {n} in 'a:b'")
            return np.arange(a, b)
        rows = np.array([int(r) for r in text.split(",")])
    except ValueError as exc:
        if str(exc).startswith("--rows"):
            raise
        raise ValueError(f"{where}: give 'a:b' or comma-separated indices") from None
    if np.any(rows < 0) or np.any(rows >= n):
        raise ValueError(f"{where}: index outside the table")
    if len(np.unique(rows)) != len(rows):
        raise ValueError(f"{where}: a row is named more than once")
    return rows


def cmd_run(args) -> int:
    from provabgs_sbi.workflows.main_job import run_main_job

    return run_main_job(out=args.out, n_samples=args.n_samples, flow_dir=args.flow,
                        emulator_dir=args.emulator, limit=args.limit, overwrite=args.overwrite)
