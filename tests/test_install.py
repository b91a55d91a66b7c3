"""A wheel holds the whole package and the committed artifacts, and finds them installed.

``setup.cfg`` lists the packages by hand (the artifact folders are mapped into
``provabgs_sbi/_artifacts/``, which ``packages = find:`` cannot add), so the list is
checked against the folders here; the slow test builds a wheel, unpacks it outside the
checkout and loads the default posterior and its emulator from it.
"""
from __future__ import annotations

import configparser
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
ARTIFACT_FOLDERS = ("emulator", "flows", "data")


def setup_options() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(CHECKOUT / "setup.cfg")
    return cfg["options"]


def listed(value: str) -> list[str]:
    return [v.strip() for v in value.strip().splitlines() if v.strip()]


def test_setup_cfg_lists_every_package():
    opts = setup_options()
    packages = set(listed(opts["packages"]))
    on_disk = {".".join(p.parent.relative_to(CHECKOUT).parts)
               for p in (CHECKOUT / "provabgs_sbi").rglob("__init__.py")}
    artifacts = {f"provabgs_sbi._artifacts.{name}" for name in ARTIFACT_FOLDERS}
    assert packages - artifacts == on_disk, "add the missing packages to setup.cfg"
    mapping = dict(line.split(" = ") for line in listed(opts["package_dir"]))
    assert mapping == {f"provabgs_sbi._artifacts.{name}": name for name in ARTIFACT_FOLDERS}
    assert artifacts <= packages


def artifact_files() -> dict[str, Path]:
    """Wheel path -> file, for every file of the artifact folders."""
    return {f"provabgs_sbi/_artifacts/{p.relative_to(CHECKOUT).as_posix()}": p
            for name in ARTIFACT_FOLDERS for p in sorted((CHECKOUT / name).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build writes into its source)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.part")
    for name in ("provabgs_sbi", *ARTIFACT_FOLDERS):
        shutil.copytree(CHECKOUT / name, src / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, src / name)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "--disable-pip-version-check", "-q",
                          "-w", str(tmp / "dist"), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (found,) = (tmp / "dist").glob("provabgs_sbi-*.whl")
    return found


@pytest.mark.slow
def test_wheel_holds_the_package_and_the_artifacts_bit_for_bit(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member, path in artifact_files().items():
            assert member in names, f"{member} missing from the wheel"
            assert hashlib.sha256(zf.read(member)).digest() == \
                hashlib.sha256(path.read_bytes()).digest(), member
    modules = {p.relative_to(CHECKOUT).as_posix()
               for p in (CHECKOUT / "provabgs_sbi").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    nmf = {p.relative_to(CHECKOUT).as_posix()
           for p in (CHECKOUT / "provabgs_sbi" / "data" / "nmf").glob("*")}
    assert nmf <= names, sorted(nmf - names)
    assert "provabgs_sbi/cli/console.py" in names


@pytest.mark.slow
def test_unpacked_wheel_finds_the_default_posterior_outside_any_checkout(wheel, tmp_path):
    """As after ``pip install``: the package outside a checkout loads the default
    posterior (its manifest hashes verified) and the emulator it pairs with."""
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = ("from provabgs_sbi.io import paths\n"
            "from provabgs_sbi.inference.posterior import Posterior, emulator_of\n"
            "from provabgs_sbi.emulator import Emulator\n"
            "print(paths.artifact_root())\n"
            "post = Posterior.load(paths.DEFAULT_FLOW)\n"
            "emu = Emulator.load(emulator_of(paths.DEFAULT_FLOW))\n"
            "print(paths.default_noise_file().is_file(), post.noise is not None, emu.z_range)\n")
    env = {k: v for k, v in os.environ.items() if k != "PROVABGS_SBI_ARTIFACTS"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    root, checks = run.stdout.strip().splitlines()[-2:]
    assert Path(root) == site / "provabgs_sbi" / "_artifacts"
    assert checks.startswith("True True")
