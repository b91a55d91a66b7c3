"""The ``provabgs-sbi`` command line.

Subcommands
-----------
``run``        the main job on the embedded default (see ``provabgs-sbi run --help``)
``sps build``  build and cache an SSP table (``--backend bc03|bc03_nebular|...|fsps``)
``sed``        ugriz nanomaggies and magnitudes of one galaxy, optionally a spectrum plot

TensorFlow's, absl's, XLA's and CUDA's log lines are hidden; ``--verbose`` (before or
after the command) shows them.
"""
from __future__ import annotations

import argparse
import sys

from provabgs_sbi.cli import commands, flow_commands
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.model.sps import BACKENDS

#: The global flag that shows TensorFlow's log lines (accepted before or after a command).
VERBOSE_FLAGS = ("-v", "--verbose")


def _add_catalog_args(p) -> None:
    p.add_argument("catalog", help="FITS/HDF5/CSV table (NSA or SDSS layout, or give columns)")
    p.add_argument("--preset", choices=("nsa", "sdss"))
    p.add_argument("--mag-cols", help="magnitude columns, one per band (ugriz: five), comma "
                                      "separated; a survey posterior's are brought to AB with "
                                      "its offsets")
    p.add_argument("--err-cols", help="magnitude-error columns, one per band")
    p.add_argument("--flux-cols", help="nanomaggy columns, one per band")
    p.add_argument("--ivar-cols", help="inverse-variance columns, one per band")
    p.add_argument("--z-col", help="redshift column (a survey posterior's default: z)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _floor(text: str) -> list[float]:
    """``--floor``: one value or five comma-separated values (ugriz), mag, each >= 0."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"give one number or five comma-separated numbers "
                                         f"(mag), got {text!r}") from None
    if len(values) not in (1, 5) or not all(v >= 0 and v == v and v != float("inf")
                                            for v in values):
        raise argparse.ArgumentTypeError(f"give one value or five (ugriz), each >= 0 mag, "
                                         f"got {text!r}")
    return values


def _floor_grid(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers (mag), got {text!r}") from None
    if not values or any(not (v >= 0) for v in values):
        raise argparse.ArgumentTypeError(f"floors must be >= 0 mag, got {text!r}")
    return values


def _phases(text: str) -> tuple[tuple[float, int], ...]:
    """``--phases``: LR:BATCH pairs, comma separated, e.g. ``1e-4:4096,5e-5:8192``."""
    try:
        pairs = tuple((float(lr), int(bs)) for lr, bs in (p.split(":") for p in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give LR:BATCH pairs separated by commas, got "
                                         f"{text!r}") from None
    if not pairs or any(not (lr > 0) or bs < 1 for lr, bs in pairs):
        raise argparse.ArgumentTypeError(f"learning rates must be > 0 and batches >= 1, got "
                                         f"{text!r}")
    return pairs


def _wave_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give LO,HI in Angstrom, got {text!r}") from None
    if not 0 < lo < hi:
        raise argparse.ArgumentTypeError(f"need 0 < LO < HI, got {text!r}")
    return lo, hi


def _add_mcmc_validation_args(p) -> None:
    from provabgs_sbi.workflows.compare_mcmc import MCMC_DEFAULTS, PRECONDITION_DEFAULT

    p.add_argument("--mcmc-test", type=int, default=None,
                   help="test galaxies also fitted by MCMC and by importance sampling "
                        "(default 20 for SDSS ugriz posteriors, 0 for other surveys; 0: none)")
    p.add_argument("--mcmc-real", type=int, default=None,
                   help="SDSS galaxies fitted by MCMC and by importance sampling "
                        "(default 5 for SDSS ugriz posteriors, 0 for other surveys; 0: none)")
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing out/sdss_posteriors.h5 made with other settings "
                        "(a rerun with the same settings reuses the finished file)")
    p.set_defaults(func=commands.cmd_run)

    sps = sub.add_parser("sps", help="SSP tables").add_subparsers(dest="sps_command", required=True)
    p = sps.add_parser("build", help="build and cache an SSP table")
    p.add_argument("--backend", choices=BACKENDS, default="bc03")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=commands.cmd_sps_build)

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
    p.add_argument("--wave-min", type=float, default=2000.0,
                   help="shortest rest wavelength emulated, Angstrom (default 2000)")
    p.add_argument("--wave-max", type=float, default=12000.0,
                   help="longest rest wavelength emulated, Angstrom (default 12000)")
    p.add_argument("--survey", default="sdss_ugriz",
                   help="shipped survey whose bands the final validation reports")
    p.add_argument("--exact-lines", action="store_true",
                   help="emulate the SED without its emission lines and add the lines exactly "
                        "(a nebular --sps such as bc03_nebular; docs/guide/nebular.md)")
    p.add_argument("--init-from", metavar="FOLDER",
                   help="continue the network of this trained emulator, on its PCA basis "
                        "(same --sps, grid, --n-pca, --hidden, --input-mode, --exact-lines)")
    p.add_argument("--phases", type=_phases, default=None,
                   help="learning-rate phases as LR:BATCH,LR:BATCH,... (default the six "
                        "phases of EmulatorConfig, 1e-3:512 to 2e-5:16384)")
    p.add_argument("--pixel-weight-power", type=float, default=0.0,
                   help="weight each pixel's squared ln L error by (its p99 error under the "
                        "--init-from network / the median pixel's) ** POWER, clipped to "
                        "[1, --pixel-weight-max] (default 0: unweighted)")
    p.add_argument("--pixel-weight-max", type=float, default=30.0)
    p.add_argument("--pixel-weight-wave", type=_wave_range, default=None, metavar="LO,HI",
                   help="weight only the pixels of this rest wavelength range, Angstrom "
                        "(default the whole grid)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="artifact folder (default emulator/<name>)")
    p.add_argument("--work-dir", help="where the training spectra, PCA basis and network "
                                      "checkpoint go, resumed on a rerun (default: the cache)")
    p.set_defaults(func=commands.cmd_emulator_train)
    p = emu.add_parser("validate", help="accuracy report on held-out prior draws")
    p.add_argument("path", nargs="?",
                   help="emulator folder (default: the default posterior's emulator)")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--plot", default="emulator_errors.png", help="PNG of the error percentiles")
    p.add_argument("--survey", default="sdss_ugriz",
                   help="survey whose bands the magnitude errors are reported for")
    p.set_defaults(func=commands.cmd_emulator_validate)

    data = sub.add_parser("data", help="third-party data").add_subparsers(dest="data_command",
                                                                          required=True)
    p = data.add_parser("fetch", help="download (checksum verified) and cache the bc03 grid and "
                                      "the SDSS sample")
    p.set_defaults(func=commands.cmd_data_fetch)

    ts = sub.add_parser("trainset", help="ANPE training sets").add_subparsers(
        dest="trainset_command", required=True)
    p = ts.add_parser("make", help="prior -> emulator photometry -> noise; chunked, resumable HDF5")
    p.add_argument("--n", type=int, required=True, help="accepted galaxies wanted")
    p.add_argument("--out", required=True, help="HDF5 file (resumed if it exists)")
    p.add_argument("--emulator", help="emulator folder (default: the default posterior's)")
    p.add_argument("--survey", default="sdss_ugriz",
                   help="bands and filters: a shipped survey (sdss_ugriz, galex_sdss_2mass) or "
                        "a survey JSON file (docs/guide/surveys.md)")
    p.add_argument("--noise", metavar="ECSV",
                   help="noise model file (default: the survey's noise_model)")
    p.add_argument("--prior", default="default", choices=("default", "sedflow"))
    p.add_argument("--z-min", type=float, default=None,
                   help="lowest redshift (default: the survey's z_range)")
    p.add_argument("--z-max", type=float, default=None,
                   help="highest redshift (default: the survey's z_range)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "tf"))
    p.set_defaults(func=commands.cmd_trainset_make)

    nz = sub.add_parser("noise", help="photometric noise models").add_subparsers(
        dest="noise_command", required=True)
    p = nz.add_parser("table", help="a noise model from a table of sigma versus magnitude per "
                                    "band (a survey without a catalog)")
    p.add_argument("table", help="table with columns band, mag, sigma [, scatter] "
                                 "(ECSV, CSV, FITS)")
    p.add_argument("--out", required=True, help="noise model file to write (ECSV)")
    p.add_argument("--survey", help="check that the table's bands are this survey's, in order")
    p.add_argument("--scatter-fraction", type=float, default=0.1,
                   help="scatter of the errors at fixed magnitude, as a fraction of sigma, "
                        "where the table has no scatter column (default 0.1)")
    p.set_defaults(func=commands.cmd_noise_table)
    p = nz.add_parser("fit", help="fit a shipped survey's noise model to its catalog "
                                  "(the kcorrect sample) and draw its figure")
    p.add_argument("--survey", default="sdss_ugriz",
                   help="sdss_ugriz (data/noise_model_sdss.ecsv) or galex_sdss_2mass")
    p.add_argument("--out", help="ECSV to write (default data/noise_model_<survey>.ecsv)")
    p.add_argument("--figure", help="PNG to write (default docs/figures/noise_model_<survey>.png)")
    p.set_defaults(func=commands.cmd_noise_fit)

    fl = sub.add_parser("flow", help="train the posterior flow").add_subparsers(
        dest="flow_command", required=True)
    p = fl.add_parser("train", help="fit the conditional flow on a training set")
    p.add_argument("trainset", nargs="+",
                   help="training-set file(s); several (made alike, other seeds) are joined")
    p.add_argument("--out", required=True, help="a new posterior folder, e.g. flows/<name>")
    p.add_argument("--preset", default="auto",
                   help="'auto' (default): an affine and a spline MAF sized by the number of "
                        "galaxies, the lower validation loss kept (docs/guide/training.md); "
                        "or a FlowConfig preset: default, sedflow-paper, tiny")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--box-transform", choices=("logit", "probit", "plateau"),
                   help="map from the prior box to the flow's space (default: the preset's)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="other FlowConfig fields, e.g. lr_patience=3 weight_decay=0.3 "
                        "transform=spline")
    p.add_argument("--whiten-mags", action="store_true",
                   help="decorrelate the magnitude inputs (ZCA; whiten_columns = the survey's "
                        "magnitude columns): trains faster, see docs/guide/training.md. With "
                        "--init, the flow starts as exactly the given one")
    p.add_argument("--checkpoint-dir",
                   help="checkpoints, resumed if present (default: <first trainset>.checkpoints)")
    p.add_argument("--test", help="held-out training-set file for the coverage metrics")
    p.add_argument("--emulator-id", help="recorded in the manifest")
    p.add_argument("--init", metavar="FOLDER",
                   help="fine-tune this trained flow (a posterior folder with one flow, or a "
                        "saved flow such as flows/bc03/flow/member_0) instead of a random start")
    p.add_argument("--mask-aware", nargs="*", metavar="FIELD=VALUE",
                   help="train a mask-aware posterior (inflated errors, systematic floors, "
                        "missing bands; Conditioning), optionally with other Conditioning "
                        "fields, e.g. --mask-aware min_bands=3 floor_max=0.1")
    p.add_argument("--default-floor", type=float, default=0.0,
                   help="with --mask-aware: the floor (mag) fits use unless told otherwise")
    p.set_defaults(func=flow_commands.cmd_flow_train)
    p = fl.add_parser("floor", help="choose a mask-aware posterior's default systematic floor "
                                    "from its survey's real catalog (the SDSS sample; the kcorrect "
                                    "sample in ten bands for galex_sdss_2mass) and record it")
    p.add_argument("folder", help="a mask-aware posterior folder (flow train --mask-aware)")
    p.add_argument("--test", required=True, help="held-out training-set file (expected chi2)")
    p.add_argument("--floors", type=_floor_grid, default=None,
                   help="comma-separated floors to try, mag (default 0 to 0.1)")
    p.add_argument("--target", type=float, default=0.02,
                   help="largest fraction of real galaxies above the expected 99th percentile "
                        "(the real median must also be at most the expected one)")
    p.add_argument("--figures", default=None, help="folder for floor_choice.png and .json")
    p.add_argument("--per-band", action="store_true",
                   help="choose one floor per band: each band's own chi^2 term must agree with "
                        "its expected distribution (refits until it does); where not every "
                        "band can, the common floor if it leaves fewer galaxies in the tail")
    p.add_argument("--n-test", type=int, default=2000,
                   help="held-out galaxies for the expected distribution (default 2000)")
    p.add_argument("--emulator", help=EMULATOR_HELP)
    p.add_argument("--dry-run", action="store_true", help="report, do not record")
    p.set_defaults(func=flow_commands.cmd_flow_floor)
    p = fl.add_parser("zrange", help="find the lowest redshift a posterior is calibrated at "
                                     "(z-scores of held-out galaxies per redshift bin) and "
                                     "record it: fits below it are flagged")
    p.add_argument("folder", help="a posterior folder")
    p.add_argument("--test", required=True, help="held-out training-set file")
    p.add_argument("--n-per-bin", type=int, default=300,
                   help="galaxies per redshift bin observed with all bands (default 300)")
    p.add_argument("--n-samples", type=int, default=300)
    p.add_argument("--figures", default=None, help="folder for redshift_calibration.json")
    p.add_argument("--dry-run", action="store_true", help="report, do not record")
    p.set_defaults(func=flow_commands.cmd_flow_zrange)
    p = fl.add_parser("combine", help="save the equal-weight mixture of trained posteriors "
                                      "(galaxies drawn alike) as one")
    p.add_argument("members", nargs="+", help="flows/<configuration> folders")
    p.add_argument("--out", required=True, help="a new folder")
    p.add_argument("--test", help="held-out training-set file for the coverage metrics")
    p.set_defaults(func=flow_commands.cmd_flow_combine)

    p = sub.add_parser("posterior", help="posterior samples for a catalog (resumable)")
    _add_catalog_args(p)
    p.add_argument("--flow", default=str(DEFAULT_FLOW))
    p.add_argument("--n-samples", type=_positive_int, default=1000)
    p.add_argument("--n-store", type=int, default=None, metavar="N",
                   help="draws stored per galaxy (default all --n-samples; 100 as the PROVABGS "
                        "DESI catalog; 0: summaries only); percentiles use all draws")
    p.add_argument("--out", required=True,
                   help="output HDF5 (not the catalog; its folder is created)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out and discard an interrupted fit's .part "
                        "(start afresh)")
    p.add_argument("--rows", help="rows to fit, counted from 0: 'a:b' or 'i,j,k'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--emulator", help="model of the posterior predictive check; "
                                      + EMULATOR_HELP)
    p.add_argument("--no-ppc", action="store_true", help="skip the posterior predictive check")
    p.add_argument("--floor", type=_floor, default=None,
                   help="systematic floor added to the errors in quadrature, mag: one value or "
                        "one per band, comma-separated (ugriz: five); within the posterior's trained range "
                        "(default: the posterior's own; a posterior trained without floors "
                        "takes only 0)")
    p.add_argument("--chunk", type=_positive_int, default=200,
                   help="galaxies per chunk: read, sampled, written and resumed together "
                        "(default %(default)s)")
    p.add_argument("--hdu", help="FITS extension of the table (name or number)")
    p.add_argument("--table-path", help="HDF5 dataset of the table (default: the first found)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="fit the chunks on a Dask cluster: a scheduler address "
                        "(tcp://host:8786), or 'local' / 'local:N' to start a LocalCluster of "
                        "N worker processes (default one per core)")
    p.set_defaults(func=commands.cmd_posterior, resumes=True)

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
    p.set_defaults(func=commands.cmd_mcmc)

    p = sub.add_parser("validate", help="calibration of a posterior on fresh test galaxies")
    p.add_argument("flow", nargs="?", default=str(DEFAULT_FLOW))
    p.add_argument("--emulator", help=EMULATOR_HELP)
    p.add_argument("--n-test", type=int, default=1000,
                   help="test galaxies (for a mask-aware posterior: per regime, the first "
                        "that can be observed in it; default %(default)s)")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="validation")
    p.add_argument("--test-set", metavar="FILE",
                   help="validate on the first --n-test galaxies of this held-out training-set "
                        "file (e.g. the recipe's) instead of drawing new ones; a regime of "
                        "fixed bands reads further into it when some galaxies lack its bands")
    p.add_argument("--other-emulator", action="store_true",
                   help="accept an --emulator (or --test-set file) other than the one the "
                        "flow's training set was made with: its galaxies then test the flow on "
                        "another simulator (emulator systematics), not its calibration")
    p.add_argument("--no-catalog-checks", action="store_true",
                   help="mask-aware posteriors: skip the checks on the SDSS sample (noise "
                        "flags, poor fits, one band removed)")
    _add_mcmc_validation_args(p)
    p.set_defaults(func=commands.cmd_validate)

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
    p.set_defaults(func=commands.cmd_figures)

    p = sub.add_parser("sed", help="photometry (and a spectrum plot) of one galaxy")
    p.add_argument("--theta", required=True,
                   help="12 numbers: " + " ".join(PARAM_NAMES) + " (comma or space separated)")
    p.add_argument("--z", type=float, required=True, help="redshift (> 0)")
    p.add_argument("--sps", default="bc03", help="SPS configuration (default bc03)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the rest-frame spectrum and filters")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands.cmd_sed)
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
    except KeyboardInterrupt:
        print("provabgs-sbi: interrupted"
              + ("; finished chunks are kept, rerunning the same command resumes"
                 if getattr(args, "resumes", False) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
