"""The notebooks in ``notebooks/``: committed without outputs, and every name they import
from provabgs_sbi exists.

Executing them is a separate CI step (``pytest --nbmake notebooks/``, a minute or two each);
these checks take seconds and catch the two common ways a notebook goes stale: committed
outputs (large diffs, stale numbers) and an API renamed under it.
"""
import ast
import importlib
import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
STRIP_HINT = "strip it with `nbstripout notebooks/*.ipynb` (pip install nbstripout)"


def _cells(path, kind):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def _source(cell) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _python(cell) -> str:
    """A code cell's source with IPython magics and shell lines blanked (ast cannot read them)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in _source(cell).splitlines())


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"fit_sdss.ipynb", "validate_posterior.ipynb",
                                          "train_toy.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for k, cell in enumerate(_cells(path, "code")):
        assert cell.get("outputs") == [], f"{path.name}, code cell {k} has outputs: {STRIP_HINT}"
        assert cell.get("execution_count") is None, \
            f"{path.name}, code cell {k} has an execution count: {STRIP_HINT}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_imports_from_the_package_exist(path):
    imported = []
    for k, cell in enumerate(_cells(path, "code")):
        tree = ast.parse(_python(cell), filename=f"{path.name}[{k}]")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "provabgs_sbi":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), \
                        f"{path.name}: `from {node.module} import {alias.name}`: no such name"
                    imported.append(f"{node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "provabgs_sbi":
                        importlib.import_module(alias.name)
                        imported.append(alias.name)
    assert imported, f"{path.name} imports nothing from provabgs_sbi"
