"""No import cycles: every submodule imports on its own, whichever is imported first.

A cycle hides as long as its modules are always entered the same way; here every module is
the first one imported once (the package's modules are dropped from ``sys.modules`` before
each), in random orders, in a fresh interpreter per order (as sbi's
``tests/circular_import_test.py``).
"""
from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "provabgs_sbi"
SEEDS = (0, 1, 2)

#: Imports each module named in argv[1] (a JSON list) with the package's modules dropped
#: from sys.modules first; prints {module: error} for those that fail.
IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "provabgs_sbi" or m.startswith("provabgs_sbi.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def submodules() -> list[str]:
    """Every module and package under provabgs_sbi/, but ``__main__`` (it runs the CLI)."""
    return [module_name(p) for p in package_files() if p.name != "__main__.py"]


def test_the_module_list_is_complete():
    names = submodules()
    assert "provabgs_sbi" in names and "provabgs_sbi.cli.main" in names
    assert "provabgs_sbi.inference.posterior" in names and len(names) == len(set(names))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_every_submodule_imports_first_in_random_order(seed, tmp_path):
    names = submodules()
    random.Random(seed).shuffle(names)
    run = subprocess.run([sys.executable, "-c", IMPORT_EACH, json.dumps(names)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900,
                         env=_env_with_package_first())
    assert run.returncode == 0, run.stderr[-3000:]
    failed = json.loads(run.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{name}:\n{err}" for name, err in failed.items())


def _env_with_package_first() -> dict:
    """The environment, with this checkout first on the path (an editable install of
    another checkout must not be imported instead)."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR.parent),
                                                      env.get("PYTHONPATH")]))
    return env


def test_a_failing_import_is_reported(tmp_path):
    """The check can fail: a module that does not exist is reported with its error."""
    run = subprocess.run([sys.executable, "-c", IMPORT_EACH,
                          json.dumps(["provabgs_sbi._version", "provabgs_sbi.no_such_module"])],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=_env_with_package_first())
    failed = json.loads(run.stdout.strip().splitlines()[-1])
    assert list(failed) == ["provabgs_sbi.no_such_module"]
    assert "ModuleNotFoundError" in failed["provabgs_sbi.no_such_module"]


def imports_of(path: Path):
    """(line, module, level) of every ``from X import`` and ``import X`` in a file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, 0


def test_no_module_imports_the_package_face():
    """Low modules import what they need from where it is defined, never from the face
    (``provabgs_sbi/__init__.py`` imports the whole package), and imports stay absolute."""
    bad = []
    for path in package_files():
        rel = path.relative_to(PACKAGE_DIR.parent)
        for line, module, level in imports_of(path):
            if level:
                bad.append(f"{rel}:{line}: relative import")
            elif module == "provabgs_sbi" and path.name != "__init__.py":
                bad.append(f"{rel}:{line}: imports the package face")
    assert not bad, "\n".join(bad)


def test_the_face_check_sees_a_face_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from provabgs_sbi import Prior\nfrom . import x\n")
    assert list(imports_of(bad)) == [(1, "provabgs_sbi", 0), (2, "", 1)]


def test_the_face_is_lazy_and_complete(tmp_path):
    """``import provabgs_sbi`` loads neither TensorFlow nor the subpackages (so the
    command line can quiet TensorFlow first); every public name then resolves."""
    code = ("import sys, provabgs_sbi as p\n"
            "print(sorted(m for m in sys.modules if m.startswith(('provabgs_sbi', 'tensorflow'))))\n"
            "print(sorted(n for n in p.__all__ if getattr(p, n) is None))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env=_env_with_package_first())
    assert run.returncode == 0, run.stderr[-3000:]
    loaded, missing = run.stdout.strip().splitlines()[-2:]
    assert loaded == "['provabgs_sbi', 'provabgs_sbi._version']"
    assert missing == "[]"
