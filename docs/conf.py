"""Sphinx configuration of the provabgs-sbi documentation.

Build (warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs /tmp/docs_html

The API reference is generated at build time by ``sphinx.ext.autosummary`` walking
``provabgs_sbi`` recursively (``api.rst``), so it follows whatever modules exist; the
generated pages go to ``docs/api/`` (ignored by git).
"""
from __future__ import annotations

import inspect
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document the checkout this conf.py sits in, even if another copy is pip-installed.
sys.path.insert(0, str(ROOT))
# Importing the package imports TensorFlow; keep its C++ log lines out of the build output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import provabgs_sbi  # noqa: E402

project = "provabgs-sbi"
author = "provabgs-sbi developers"
copyright = "provabgs-sbi developers, MIT licence"
version = release = provabgs_sbi.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST (the Markdown pages) ---------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- Plain-text notation in docstrings -------------------------------------------------
# The package's docstrings write absolute values and determinants as in a paper,
# ``|dL/L|`` or ``log |det dw / d eps|``, and shapes as ``(4, *t.shape)``. reST reads
# ``|...|`` as a substitution and ``*...`` as the start of emphasis; the package uses
# neither, so before rendering those characters are escaped outside inline literals,
# math roles and literal blocks.
_LITERAL = re.compile(r"(``.+?``|:math:`[^`]+`)")
_UNPACK_STAR = re.compile(r"(?<![\w*\\])\*(?=[A-Za-z_][\w.]*[),\]])")


def escape_plain_notation(line: str) -> str:
    """Escape ``|`` and an unpacking ``*`` (no closing ``*`` after it) in one reST line."""
    parts = _LITERAL.split(line)
    for i in range(0, len(parts), 2):          # even parts lie outside literals
        text = re.sub(r"(?<!\\)\|", r"\\|", parts[i])
        if "*" in text:
            text = _UNPACK_STAR.sub(lambda m: "\\*" if "*" not in text[m.end():] else "*",
                                    text)
        parts[i] = text
    return "".join(parts)


def escape_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring`` hook: :func:`escape_plain_notation` on each line
    outside literal blocks and directives (what follows a line ending in ``::``)."""
    literal_indent = None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                continue
            literal_indent = None
        lines[i] = escape_plain_notation(line)
        if line.rstrip().endswith("::"):
            literal_indent = indent


# -- API reference ---------------------------------------------------------------------
# The generated pages are rebuilt from scratch each time, so a module that was split or
# removed leaves no stale page behind.
shutil.rmtree(Path(__file__).parent / "api", ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = False
# ``ignore-module-all``: a module documents what it defines, not what its ``__all__``
# re-exports, so each object is described once, on the page of the module defining it.
autodoc_default_options = {"members": True, "member-order": "bysource",
                           "ignore-module-all": True}
autodoc_typehints = "none"           # the numpydoc sections carry the types
# A ``__main__`` module (``python -m provabgs_sbi.cli``) runs the command line when imported;
# autosummary imports every submodule it finds, so these are mocked (which also leaves them
# out of the listing).
autodoc_mock_imports = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "provabgs_sbi").rglob("__main__.py"))

numpydoc_show_class_members = False  # autodoc's ``members`` lists them, once
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False


def face_table() -> list[tuple[str, str]]:
    """(reST reference or literal, one-line summary) of each name ``provabgs_sbi`` exports.

    Computed from ``provabgs_sbi.__all__`` at build time, so the API index links each
    re-exported name to the module defining it now, wherever the modules move.
    """
    rows = []
    for name in sorted(provabgs_sbi.__all__, key=str.lower):
        if name.startswith("_"):
            continue
        obj = getattr(provabgs_sbi, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            role = "class" if inspect.isclass(obj) else "func"
            ref = f":py:{role}:`~{obj.__module__}.{obj.__qualname__}`"
            doc = inspect.getdoc(obj) or ""
            summary = escape_plain_notation(" ".join(doc.split("\n\n")[0].split()))
        elif isinstance(obj, Path):
            ref = f"``{name}``"
            where = obj.relative_to(obj.parents[1]).as_posix()
            summary = f"path, ``.../{where}`` (see :mod:`provabgs_sbi.io.paths`)"
        else:
            ref = f"``{name}``"
            summary = f"{type(obj).__name__}: ``{obj!r}``"
        rows.append((ref, summary))
    return rows


autosummary_context = {"face": face_table()}

# -- HTML ------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"provabgs-sbi {release}"


def setup(app):
    # after numpydoc (priority 500) has turned its sections into reST
    app.connect("autodoc-process-docstring", escape_docstring, priority=600)
