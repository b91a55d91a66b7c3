"""Catalog fits on a Dask cluster: the chunks of :func:`~provabgs_sbi.workflows.fit.fit_catalog`
as tasks on the workers of a ``distributed.Client``.

The process that calls ``fit_catalog`` reads the catalog a chunk at a time, sends each chunk's
rows (a few kB) to a worker with the job's description (:func:`~provabgs_sbi.workflows.fit.job_spec`:
folders and values), and writes each result to the one output file as it comes back, so
only one process ever writes HDF5. A worker loads the posterior, emulator and SED model once
(:func:`_worker_job`, cached per worker process) and runs
:func:`~provabgs_sbi.workflows.fit.fit_chunk`, the very function a serial fit runs: each
chunk's draws are seeded by its first row, so the file is the same as a serial fit's. At
most ``2 x`` the cluster's threads chunks are in flight, so the reading process's memory does
not grow with the catalog. A run that stops (a worker lost, the client interrupted) resumes
from the chunks already written.

:func:`local_client` starts a ``LocalCluster`` for one machine; on a real cluster, pass a
client connected to its scheduler (``docs/guide/dask.md``: dask-jobqueue on SLURM).
"""
from __future__ import annotations

import functools
import json
import os
import uuid
from typing import Callable, NamedTuple

#: Chunks in flight per worker thread (one computing, one queued).
IN_FLIGHT_PER_THREAD = 2


@functools.lru_cache(maxsize=2)
def _worker_models(models_json: str, extras_key: int, load):
    """Posterior, model and derived model of a spec (``load(spec)``), loaded once per
    worker process for every fit that uses the same folders (only the seed or sample
    counts differ)."""
    spec = dict(json.loads(models_json))
    spec.update(_EXTRAS.get(extras_key, {}))
    return load(spec)


def _worker_job(spec_json: str, extras_key: int, steps):
    """The job of a spec on this worker (its models from :func:`_worker_models`)."""
    spec = dict(json.loads(spec_json))
    spec.update(_EXTRAS.get(extras_key, {}))
    models = {k: spec[k] for k in ("posterior", "model", "derived_model")
              if k in spec and isinstance(spec[k], (str, type(None)))}
    return steps.build(spec, _worker_models(json.dumps(models, sort_keys=True), extras_key,
                                            steps.load))


#: Objects of a spec that are not JSON (a model or derived model passed as itself), kept per
#: worker process under a key.
_EXTRAS: dict = {}


def _fit_remote(spec_json: str, extras: dict, key: int, rows, steps):
    """Worker side: fit one chunk (``rows``, a ChunkRows) with the job of ``spec_json`` and
    the objects ``extras`` (kept under ``key``, unique to the fit that sent them)."""
    if extras and key not in _EXTRAS:
        _EXTRAS[key] = extras
    return rows.start, steps.run(_worker_job(spec_json, key, steps), rows)


def _split_spec(spec: dict):
    """(JSON of the plain part, dict of the objects that are not plain values)."""
    plain, extras = {}, {}
    for k, v in spec.items():
        if v is None or isinstance(v, (str, int, float, list, dict)):
            plain[k] = v
        else:
            extras[k] = v
    return json.dumps(plain, sort_keys=True), extras


class ChunkSteps(NamedTuple):
    """The worker's three steps, passed in by the caller (this module does not import the
    fit, which imports it): ``load(spec)`` -> models, ``build(spec, models)`` -> job,
    ``run(job, rows)`` -> the chunk's result. Module-level functions, so that they travel
    to the workers by name."""

    load: Callable
    build: Callable
    run: Callable


def run_chunks_on(client, spec: dict, starts, read_rows, steps: ChunkSteps):
    """Yield ``(start, result)`` of every chunk as the workers finish them.

    Parameters
    ----------
    client : distributed.Client
    spec : dict
        :func:`~provabgs_sbi.workflows.fit.job_spec`.
    starts : list of int
        First rows of the chunks to fit.
    read_rows : callable
        ``read_rows(start)`` -> ChunkRows of that chunk (read in this process).
    steps : ChunkSteps
        What a worker does with a chunk (:func:`~provabgs_sbi.workflows.fit.load_spec_models`,
        :func:`~provabgs_sbi.workflows.fit.job_from_spec`,
        :func:`~provabgs_sbi.workflows.fit.fit_chunk`).
    """
    from distributed import as_completed

    spec_json, extras = _split_spec(spec)
    extras_future = client.scatter(extras, broadcast=True) if extras else {}
    key = uuid.uuid4().int if extras else 0
    threads = max(1, sum(client.nthreads().values()))
    limit = IN_FLIGHT_PER_THREAD * threads
    pending = iter(starts)
    queue = as_completed()
    in_flight = 0
    for s in pending:
        queue.add(client.submit(_fit_remote, spec_json, extras_future, key, read_rows(s),
                                steps, pure=False))
        in_flight += 1
        if in_flight >= limit:
            break
    for future in queue:
        start, result = future.result()
        future.release()
        yield start, result
        nxt = next(pending, None)
        if nxt is not None:
            queue.add(client.submit(_fit_remote, spec_json, extras_future, key, read_rows(nxt),
                                    steps, pure=False))


def local_client(n_workers: int | None = None, threads_per_worker: int = 1):
    """A ``distributed.Client`` of a new ``LocalCluster`` of worker processes.

    Parameters
    ----------
    n_workers : int, optional
        Default: one per CPU core.
    threads_per_worker : int
        Threads each worker runs tasks on; TensorFlow and BLAS in each worker use as many
        (set through the environment before the workers start), so that the workers do not
        oversubscribe the cores.
    """
    from distributed import Client

    n_workers = n_workers or os.cpu_count() or 1
    threads = str(int(threads_per_worker))
    env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "MKL_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
           "TF_NUM_INTEROP_THREADS": threads}
    # Started by the client, so that closing the client stops the cluster too.
    return Client(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                  dashboard_address=None, env=env)
