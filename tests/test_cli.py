"""The command line."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from provabgs_sbi.cli.main import build_parser, main
from provabgs_sbi.io.paths import artifact_root


def test_sed_prints_photometry_and_plots(tmp_path, capsys):
    png = tmp_path / "sed.png"
    rc = main(["sed", "--theta", "10 0.1 0.2 0.3 0.4 0 1 3e-3 3e-3 0.5 0.3 -0.5", "--z", "0.05",
               "--json", "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    mags = np.array(list(data["ab_mag"].values()))
    flux = np.array(list(data["nanomaggies"].values()))
    np.testing.assert_allclose(mags, 22.5 - 2.5 * np.log10(flux))
    assert 17 < mags[2] < 19
    assert png.stat().st_size > 10_000


def test_sed_bad_input_is_a_clear_error(capsys):
    rc = main(["sed", "--theta", "10 0.5 0.2 0.3 0.4 0 1 3e-3 3e-3 0.5 0.3 -0.5", "--z", "0.05"])
    assert rc == 2
    assert "betas sum" in capsys.readouterr().err


def test_sps_build_reports_table(capsys):
    assert main(["sps", "build"]) == 0
    out = capsys.readouterr().out
    assert "220 ages" in out and "content hash" in out


def test_verbose_before_or_after_the_command():
    from provabgs_sbi.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["run"]).verbose is False
    assert parser.parse_args(["--verbose", "run"]).verbose is True
    assert parser.parse_args(["run", "--verbose", "--limit", "5"]).verbose is True
    assert parser.parse_args(["flow", "train", "a.h5", "--out", "f", "-v"]).verbose is True
    assert parser.parse_args(["run", "--limit", "5"]).limit == 5
    assert parser.parse_args(["run"]).limit is None
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--limit", "0"])


def test_recipes_do_not_record_verbose():
    from provabgs_sbi.cli.main import recipe_arguments

    assert recipe_arguments(["--verbose", "flow", "train", "a.h5", "--out", "f"]) == \
        ["a.h5", "--out", "f"]
    assert recipe_arguments(["flow", "combine", "a", "-v", "--out", "f"]) == ["a", "--out", "f"]


def test_native_log_lines_are_recognised():
    from provabgs_sbi.cli.console import NATIVE_LOG_LINE

    noise = [b"WARNING: All log messages before absl::InitializeLog() is called are written to "
             b"STDERR",
             b"I0000 00:00:1796086786.063536   12409 cudart_stub.cc:31] Could not find cuda "
             b"drivers on your machine, GPU will not be used.",
             b"E0000 00:00:1796086804.993670   12409 cuda_platform.cc:52] failed call to cuInit",
             b"2026-01-05 10:11:12.123456: I tensorflow/core/util/port.cc:153] oneDNN custom "
             b"operations are on.",
             b"To enable the following instructions: AVX2 FMA, in other operations, rebuild "
             b"TensorFlow with the appropriate compiler flags."]
    kept = [b"F0000 00:00:1796086804.993670   12409 check.cc:52] Check failed: x",
            b"provabgs-sbi: error: no such file", b"posteriors: 100%|##| 3/3",
            b"Traceback (most recent call last):"]
    assert all(NATIVE_LOG_LINE.match(line) for line in noise)
    assert not any(NATIVE_LOG_LINE.match(line) for line in kept)


CHECKOUT = Path(__file__).resolve().parents[1]
LOUD_WORDS = ("tensorflow", "absl", "onednn", "xla", "cuda", "retracing", "cpu_feature_guard")


def run_cli(args, cwd, timeout=900):
    """``python -m provabgs_sbi.cli ARGS`` in a fresh process, this checkout first on the
    path, TensorFlow's log level not preset."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "provabgs_sbi.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_run_limit_is_quiet(tmp_path):
    """The main job on 3 galaxies: no TensorFlow/absl/XLA/CUDA line and one final progress
    line on stderr."""
    import h5py

    run = run_cli(["run", "--limit", "3", "--n-samples", "20", "--out", "out"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[2/4] SDSS sample: the first 3 of 10,000 galaxies" in run.stdout
    assert "[4/4] wrote" in run.stdout
    loud = [w for w in LOUD_WORDS if w in run.stderr.lower()]
    assert not loud, run.stderr[-3000:]
    assert run.stderr.count("posteriors: 100%") == 1, run.stderr[-3000:]
    with h5py.File(tmp_path / "out" / "sdss_posteriors.h5", "r") as fh:
        assert fh["summary"].shape == (3,) and fh["samples"].shape == (3, 20, 12)


@pytest.mark.slow
def test_verbose_shows_library_logs_and_errors_always_show(tmp_path):
    """A command that loads the default posterior (TensorFlow) and then fails on a missing
    catalog: quiet, only its error; with --verbose, TensorFlow's log lines too."""
    from provabgs_sbi.cli.console import NATIVE_LOG_LINE

    args = ["posterior", "missing.fits", "--out", "x.h5", "--no-ppc"]
    quiet = run_cli(args, tmp_path)
    verbose = run_cli(["--verbose", *args], tmp_path)
    for run in (quiet, verbose):
        assert run.returncode == 2
        assert "provabgs-sbi: error:" in run.stderr and "missing.fits" in run.stderr
    assert not [w for w in LOUD_WORDS if w in quiet.stderr.lower()], quiet.stderr[-3000:]
    lines = verbose.stderr.encode().splitlines()
    assert any(NATIVE_LOG_LINE.match(line) for line in lines), verbose.stderr[-3000:]


def test_every_committed_recipe_command_still_parses():
    """Each ``provabgs-sbi ...`` line of the committed artifacts' RECIPE.md files (shell
    variables and line continuations resolved) is accepted by today's parser, so the
    recipes that rebuilt the artifacts still run."""
    parser = build_parser()
    recipes = sorted(artifact_root().glob("*/*/RECIPE.md"))
    assert len(recipes) >= 4
    lines = []
    for path in recipes:
        text = Path(path).read_text().replace("\\\n", " ")
        env = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))
        for line in text.splitlines():
            line = line.strip().split("  #")[0]
            if line.startswith("provabgs-sbi "):
                for name, value in env.items():
                    line = line.replace("$" + name, value)
                lines.append(line.replace("$s", "10"))
    assert len(lines) >= 8
    for line in lines:
        parser.parse_args(shlex.split(line)[1:])     # exits (SystemExit) on an unknown flag
