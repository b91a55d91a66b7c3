"""Catalog fits: today's code against the code before issue 21, streaming at scale, and Dask.

Usage::

    python benchmarks/bench_catalog.py compare [--n 1000] [--samples 1000] [--repeats 2]
    python benchmarks/bench_catalog.py scale --n 10000 1000000 [--samples 100]
    python benchmarks/bench_catalog.py dask [--n 20000] [--samples 100]
    python benchmarks/bench_catalog.py shapes [--n 9248] [--samples 1000] [--repeats 2]

``compare``
    The first ``--n`` galaxies of the kcorrect SDSS sample fitted with the default posterior,
    derived properties and the posterior predictive check, alternately (in one process, same
    seeds) with today's code and with the three pieces issue 21 replaced switched back: derived
    properties draw by draw (``SEDModel.derived`` on the flattened draws), percentiles from
    ``numpy.nanpercentile`` and the emulator's numpy photometry for the check. Prints the wall
    time of each run, the medians and their ratio, and that both wrote the same numbers.
``scale``
    For each ``--n``: a catalog of that many galaxies drawn like the training set (prior,
    emulator, the committed noise model; written to an HDF5 table first, not timed) fitted
    from the file with ``--samples`` draws, summaries only (``n_store=0``), derived
    properties and the predictive check, in a fresh process: wall time, galaxies per second
    and the peak resident memory of that process (``ru_maxrss``).
``dask``
    The same kind of catalog fitted serially in this process and on a LocalCluster of 1 and
    of 2 single-threaded workers (the cluster's start and the workers' first loads not
    timed: one warm-up chunk each), with the scaling efficiency and the projected time for
    10^8 galaxies.
``shapes``
    What the padding of the XLA-compiled flow and emulator calls costs a fresh process (as
    ``provabgs-sbi run``): the first ``--n`` galaxies of the SDSS sample (default: all)
    fitted with derived properties and the check, each run in a new process, alternating
    today's padding (:mod:`provabgs_sbi.xla_shapes`: a call of several chunks pads its last
    chunk to the full chunk) with the padding before it (every partial chunk to a
    quarter-octave bucket, so each catalog chunk met new shapes and XLA compiled them
    anew, 5-20 s each). Prints each run, the medians and their ratio.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- catalogs
def write_simulated_catalog(path, n: int, seed: int = 0, block: int = 100_000) -> Path:
    """An HDF5 table (dataset ``data``) of ``n`` galaxies drawn like the training set:
    OBJID, FLUX and IVAR (AB nanomaggies, (n, 5)) and Z."""
    import h5py

    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.noise import default_noise_model
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.inference.training_set import simulate_chunk
    from provabgs_sbi.io.paths import DEFAULT_FLOW
    from provabgs_sbi.model.observation import SDSS as XL
    from provabgs_sbi.model.photometry import mag_to_nanomaggies
    from provabgs_sbi.model.priors import Prior

    post = Posterior.load(DEFAULT_FLOW)
    emu = Emulator.load(HERE.parent / "emulator" / "bc03_logbeta1")
    noise = default_noise_model()
    rng = np.random.default_rng(seed)
    dtype = [("OBJID", "<i8"), ("FLUX", "<f8", (5,)), ("IVAR", "<f8", (5,)), ("Z", "<f8")]
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset("data", shape=(n,), dtype=dtype)
        done = 0
        while done < n:
            sim = simulate_chunk(emu, noise, Prior(), int(1.2 * block), rng, post.z_range,
                                 backend="tf")
            x = sim["x"][: min(block, n - done)]
            rows = np.zeros(len(x), dtype=dtype)
            flux = mag_to_nanomaggies(XL.mags(x))
            sigma = flux * XL.errors(x) * np.log(10) / 2.5
            rows["OBJID"] = np.arange(done, done + len(x))
            rows["FLUX"], rows["IVAR"], rows["Z"] = flux, 1 / sigma**2, XL.redshift(x)
            ds[done:done + len(x)] = rows
            done += len(x)
    return Path(path)


# ----------------------------------------------------------------------------- compare
class _FlatDerived:
    """The SED model with only ``derived`` (draw by draw), as fits used it before issue 21."""

    def __init__(self, model):
        self.model = model

    def derived(self, theta, z):
        return self.model.derived(theta, z)


class _NumpyPhotometry:
    """The emulator's numpy path, the default of ``photometry`` before issue 21."""

    def __init__(self, emu):
        self.emu = emu
        self.manifest = getattr(emu, "manifest", None)

    def photometry(self, theta, z):
        return self.emu.photometry(theta, z, backend="numpy")


def _nanpercentile(values):
    return np.nanpercentile(np.asarray(values, dtype=np.float64), [16, 50, 84], axis=1)


def compare(args) -> None:
    import h5py

    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.catalog import load_sdss_sample
    from provabgs_sbi.io.paths import DEFAULT_FLOW
    from provabgs_sbi.model.sed_model import SEDModel
    from provabgs_sbi.workflows import fit

    post = Posterior.load(DEFAULT_FLOW)
    emu = Emulator.load(HERE.parent / "emulator" / "bc03_logbeta1")
    sed = SEDModel(post.info.get("sps", "bc03"))
    cat = load_sdss_sample(post.z_range).subset(np.arange(args.n))
    fast_percentiles = fit.summary_percentiles
    tmp = Path(tempfile.mkdtemp())

    def run(kind, i):
        before = kind == "before"
        fit.summary_percentiles = _nanpercentile if before else fast_percentiles
        t0 = time.perf_counter()
        out = fit.fit_catalog(post, cat, tmp / f"{kind}{i}.h5", n_samples=args.samples,
                              derived_model=_FlatDerived(sed) if before else sed,
                              model=_NumpyPhotometry(emu) if before else emu, progress=False)
        dt = time.perf_counter() - t0
        fit.summary_percentiles = fast_percentiles
        return dt, out

    times = {"before": [], "today": []}
    outs = {}
    fit.fit_catalog(post, cat.subset(np.arange(min(200, args.n))), tmp / "warm.h5",
                    n_samples=args.samples, derived_model=sed, model=emu, progress=False)
    for i in range(args.repeats):
        for kind in ("before", "today"):
            dt, outs[kind] = run(kind, i)
            times[kind].append(dt)
            print(f"  run {i + 1} {kind:>6}: {dt:7.1f} s", flush=True)
    with h5py.File(outs["before"]) as a, h5py.File(outs["today"]) as b:
        same_samples = np.array_equal(a["samples"][:], b["samples"][:], equal_nan=True)
        diff = np.nanmax(np.abs(a["stats"][:] - b["stats"][:]) / np.maximum(1e-12, np.abs(a["stats"][:])))
        dchi2 = np.nanmax(np.abs(a["chi2_best"][:] - b["chi2_best"][:]))
    tb, tt = np.median(times["before"]), np.median(times["today"])
    print(f"{args.n} SDSS galaxies x {args.samples} samples (derived properties, predictive check):")
    print(f"  before issue 21: median {tb:.1f} s ({args.n / tb:.0f} galaxies/s)")
    print(f"  today:           median {tt:.1f} s ({args.n / tt:.0f} galaxies/s)")
    print(f"  ratio before/today: {tb / tt:.2f}x  (same samples: {same_samples}; largest relative "
          f"difference of the percentiles {diff:.1e}; of chi2_best {dchi2:.1e}, float32 vs float64 "
          f"emulator)")


# ----------------------------------------------------------------------------- scale
def _fit_file(catalog, out, samples, chunk) -> dict:
    """Fit a catalog file in this process (what ``scale`` runs in a child)."""
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.catalog_stream import CatalogFile
    from provabgs_sbi.io.paths import DEFAULT_FLOW
    from provabgs_sbi.workflows.fit import fit_catalog

    post = Posterior.load(DEFAULT_FLOW)
    emu = Emulator.load(HERE.parent / "emulator" / "bc03_logbeta1")
    src = CatalogFile(catalog, {"flux_cols": "FLUX", "ivar_cols": "IVAR", "z_col": "Z",
                                "z_range": list(post.z_range)})
    t0 = time.perf_counter()
    fit_catalog(post, src, out, n_samples=samples, n_store=0, chunk=chunk, model=emu,
                progress=False, overwrite=True)
    return {"seconds": time.perf_counter() - t0, "n": len(src),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def scale(args) -> None:
    tmp = Path(args.workdir or tempfile.mkdtemp())
    for n in args.n:
        cat = tmp / f"simulated_{n}.h5"
        if not cat.exists():
            t0 = time.perf_counter()
            write_simulated_catalog(cat, n)
            print(f"  wrote {cat} ({n} galaxies) in {time.perf_counter() - t0:.0f} s", flush=True)
        res = subprocess.run([sys.executable, __file__, "_fit", str(cat), str(tmp / f"fit_{n}.h5"),
                              str(args.samples), str(args.chunk)],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        out_mb = (tmp / f"fit_{n}.h5").stat().st_size / 2**20
        print(f"{n:>9} galaxies x {args.samples} samples, summaries only: {r['seconds']:8.1f} s, "
              f"{n / r['seconds']:6.0f} galaxies/s, peak memory {r['maxrss_mb']:6.0f} MB, "
              f"output {out_mb:.0f} MB", flush=True)


# ----------------------------------------------------------------------------- shapes
def _bucket_pieces(n, chunk, pad, min_bucket=256):
    """The padding before :mod:`provabgs_sbi.xla_shapes`: every partial chunk to a bucket."""
    from provabgs_sbi.xla_shapes import bucket

    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        size = stop - start
        if pad and size < chunk:
            size = bucket(size, min_bucket)
        out.append((start, stop, size))
    return out


def _fit_sdss(n, samples, policy, out) -> dict:
    """Fit the first n SDSS galaxies in this (fresh) process with one padding policy."""
    t_start = time.perf_counter()
    import provabgs_sbi.emulator.tf_path as tf_path
    import provabgs_sbi.inference.flows.bucketing as bucketing

    if policy == "before":
        bucketing.pieces = tf_path.pieces = _bucket_pieces
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.catalog import load_sdss_sample
    from provabgs_sbi.io.paths import DEFAULT_FLOW
    from provabgs_sbi.model.sed_model import SEDModel
    from provabgs_sbi.workflows.fit import fit_catalog

    post = Posterior.load(DEFAULT_FLOW)
    emu = Emulator.load(HERE.parent / "emulator" / "bc03_logbeta1")
    sed = SEDModel(post.info.get("sps", "bc03"))
    cat = load_sdss_sample(post.z_range)
    cat = cat.subset(np.arange(min(n, len(cat.ids))))
    t0 = time.perf_counter()
    fit_catalog(post, cat, out, n_samples=samples, derived_model=sed, model=emu,
                progress=False, overwrite=True)
    return {"fit_seconds": time.perf_counter() - t0, "seconds": time.perf_counter() - t_start,
            "n": len(cat.ids)}


def shapes(args) -> None:
    tmp = Path(tempfile.mkdtemp())
    times = {"before": [], "today": []}
    for i in range(args.repeats):
        for policy in ("before", "today"):
            res = subprocess.run([sys.executable, __file__, "_fit_sdss", str(args.n),
                                  str(args.samples), policy, str(tmp / f"{policy}{i}.h5")],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            times[policy].append(r["fit_seconds"])
            print(f"  run {i + 1} {policy:>6}: fit {r['fit_seconds']:7.1f} s "
                  f"(process {r['seconds']:.1f} s)", flush=True)
    import h5py

    with h5py.File(tmp / "before0.h5") as a, h5py.File(tmp / "today0.h5") as b:
        diff = np.nanmax(np.abs(a["samples"][:] - b["samples"][:]))
    tb, tt = np.median(times["before"]), np.median(times["today"])
    print(f"{r['n']} SDSS galaxies x {args.samples} samples, fresh process each run:")
    print(f"  partial chunks padded to buckets (before): median {tb:.1f} s")
    print(f"  several-chunk calls padded to the chunk (today): median {tt:.1f} s")
    print(f"  ratio before/today: {tb / tt:.2f}x (largest sample difference {diff:.1e})")


# ----------------------------------------------------------------------------- dask
def dask_scaling(args) -> None:
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.catalog_stream import CatalogFile
    from provabgs_sbi.io.paths import DEFAULT_FLOW
    from provabgs_sbi.workflows.fit import fit_catalog
    from provabgs_sbi.workflows.fit_dask import local_client

    tmp = Path(args.workdir or tempfile.mkdtemp())
    cat = tmp / f"simulated_{args.n}.h5"
    if not cat.exists():
        write_simulated_catalog(cat, args.n)
    post = Posterior.load(DEFAULT_FLOW)
    emu = Emulator.load(HERE.parent / "emulator" / "bc03_logbeta1")
    src = CatalogFile(cat, {"flux_cols": "FLUX", "ivar_cols": "IVAR", "z_col": "Z",
                            "z_range": list(post.z_range)})
    rates = {}
    # The serial fit of the same catalog in this process (warmed up on one chunk), the
    # reference a worker's rate is compared with.
    fit_catalog(post, src.read(0, args.chunk), tmp / "warm_serial.h5", n_samples=args.samples,
                n_store=0, chunk=args.chunk, model=emu, progress=False, overwrite=True)
    t0 = time.perf_counter()
    fit_catalog(post, src, tmp / "serial.h5", n_samples=args.samples, n_store=0,
                chunk=args.chunk, model=emu, progress=False, overwrite=True, seed=1)
    serial = args.n / (time.perf_counter() - t0)
    print(f"  serial, this process: {args.n / serial:.1f} s, {serial:.0f} galaxies/s", flush=True)
    for workers in (1, 2):
        with local_client(n_workers=workers) as client:
            # Warm-up (one chunk per worker): each loads the posterior, emulator and SED
            # model and compiles.
            warm = tmp / f"warm_{workers}.h5"
            fit_catalog(post, src.read(0, workers * args.chunk), warm, n_samples=args.samples,
                        n_store=0, chunk=args.chunk, model=emu, progress=False, overwrite=True,
                        client=client)
            t0 = time.perf_counter()
            fit_catalog(post, src, tmp / f"dask_{workers}.h5", n_samples=args.samples,
                        n_store=0, chunk=args.chunk, model=emu, progress=False, overwrite=True,
                        client=client, seed=1)
            dt = time.perf_counter() - t0
        rates[workers] = args.n / dt
        print(f"  {workers} worker(s): {dt:.1f} s, {rates[workers]:.0f} galaxies/s", flush=True)
    eff = rates[2] / (2 * rates[1])
    print(f"{args.n} galaxies x {args.samples} samples, summaries only: 1 worker "
          f"{rates[1]:.0f} galaxies/s, 2 workers {rates[2]:.0f} galaxies/s "
          f"(scaling efficiency {eff:.2f}); serial in one process {serial:.0f} galaxies/s "
          f"(1 worker / serial: {rates[1] / serial:.2f})")
    for w in (2, 100, 1000):
        rate = rates[2] if w == 2 else w * rates[1] * eff
        print(f"  10^8 galaxies on {w:>4} single-core workers"
              f"{' (this machine)' if w == 2 else ' (projected, same efficiency)'}: "
              f"{1e8 / rate / 3600:8.1f} h")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_fit":
        catalog, out, samples, chunk = sys.argv[2:6]
        print(json.dumps(_fit_file(catalog, out, int(samples), int(chunk))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_fit_sdss":
        n, samples, policy, out = sys.argv[2:6]
        print(json.dumps(_fit_sdss(int(n), int(samples), policy, out)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    p = sub.add_parser("scale")
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--workdir")
    p = sub.add_parser("dask")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--chunk", type=int, default=1000)
    p.add_argument("--workdir")
    p = sub.add_parser("shapes")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    {"compare": compare, "scale": scale, "dask": dask_scaling, "shapes": shapes}[args.what](args)


if __name__ == "__main__":
    main()
