"""Batch analysis of many case archives into a store (analyzer/store.py).

Engineers triage hundreds of case archives at once. Each case is analyzed in
isolation: a case that raises, exceeds its time limit or its memory limit is
recorded as failed with the reason, and the batch goes on. A case whose
content hash is already done in the store is skipped (resumable) unless
``force``.

Engines:
- ``local``: one forked worker process per case, at most ``jobs`` at once.
  A process per case makes the limits enforceable: the memory limit is an
  address-space rlimit in the child, the time limit a kill from the parent,
  and a crash (even a segfault in a native parser) only loses that case.
  Each worker writes its own case into the store; only a small status dict
  goes back to the parent (sending tables back to a parent lost the whole
  parallel gain in measurements).
- ``dask``: dask.distributed. With ``scheduler`` the cases go to an existing
  cluster (the store must be on a file system the workers share, and the
  workers need exchange-analyzer installed); without it a LocalCluster with
  ``jobs`` single-threaded worker processes is started. Each task runs its
  case in a child interpreter (dask workers are daemonic and may not fork
  multiprocessing children), so the same time and memory limits hold as in
  the local engine; the extra interpreter start costs about a second a case.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .case import display_name
from .archive import detect_archive
from .store import Store, content_hash
from .textio import read_head

#: Per-case defaults: generous for a real case, finite for a runaway one.
DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 8192


@dataclass
class BatchOptions:
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    engine: str = "local"
    scheduler: str | None = None
    force: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int | None = DEFAULT_MEMORY_MB
    #: load_case keywords (evtx_backend, registry)
    load: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    case: str
    name: str
    source: str
    status: str        # done | failed | skipped
    reason: str | None = None
    duration_s: float = 0.0


def discover_cases(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand the batch inputs into case paths.

    An archive is a case. A folder whose direct entries are all archives or
    folders (and which holds at least one archive) is a folder *of* cases;
    any other folder is one case.
    """
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            entries = sorted(x for x in p.iterdir() if not x.name.startswith("."))
            archives = [e for e in entries if e.is_file() and _is_archive(e)]
            loose_files = [e for e in entries if e.is_file() and not _is_archive(e)]
            if archives and not loose_files:
                out.extend(entries)
            else:
                out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def _is_archive(p: Path) -> bool:
    try:
        return detect_archive(read_head(p, 512)) is not None
    except OSError:
        return False


def merge_warnings(path: Path, hosts: list[str]) -> list[str]:
    """Why one batch case may be several cases merged: an input folder of
    only folders is one case by the rule of :func:`discover_cases` (it may
    be unpacked cases side by side), and a case that spans several hosts."""
    out = []
    try:
        entries = [e for e in sorted(path.iterdir()) if not e.name.startswith(".")] \
            if path.is_dir() else []
    except OSError:  # the load already listed what it could not read
        entries = []
    if len(entries) > 1 and all(e.is_dir() and not e.is_symlink() for e in entries):
        names = ", ".join(e.name for e in entries[:5]) + (", ..." if len(entries) > 5 else "")
        out.append(f"{path.name} holds only folders ({len(entries)}: {names}), analyzed as one "
                   f"case; to analyze each folder as a case, name each one ({path}/*)")
    if len(hosts) > 1:
        out.append(f"the case spans {len(hosts)} hosts ({', '.join(hosts)})")
    return out


def case_name(path: Path) -> str:
    """The case's name as shown and stored: bytes that are not UTF-8
    become ``\\xNN`` (the identity is the content hash, never this name)."""
    from .case import upload_name
    return display_name(upload_name(path))


def case_source(path: str | os.PathLike[str]) -> str:
    """The case's path as shown and stored (undecodable bytes as ``\\xNN``)."""
    return display_name(os.fspath(path))


#: Environment variable naming the batch process to a child interpreter.
_PARENT_ENV = "EXA_BATCH_PARENT"
#: prctl(2) option: the signal this process gets when its parent ends.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this worker end when the batch process that started it ends,
    however it ends (a SIGKILLed parent runs no cleanup, and a worker stuck
    in a hostile case would otherwise run, orphaned, forever). Linux:
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; if the parent is already gone
    (it died before the call) the worker exits at once."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's timeouts still hold
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


#: The memory limit in force in this worker process (MiB), for the reason text.
_memory_limit_mb: int | None = None


def _memory_reason(where: str | None = None) -> str:
    limit = f"memory limit of {_memory_limit_mb} MiB exceeded" if _memory_limit_mb \
        else "memory limit exceeded"
    return f"{limit} ({where})" if where else limit


def process_case(path: str, store_dir: str, case_id: str, load_kw: dict[str, Any]) -> dict[str, Any]:
    """Analyze one case and write it into the store. Runs in a worker."""
    from .case import load_case
    from .report import analyze

    started = time.monotonic()
    p = Path(path)
    store = Store(Path(store_dir))
    base = {"case": case_id, "name": case_name(p), "source": case_source(p)}
    try:
        case = load_case(p, name=case_name(p), **load_kw)
        report = analyze(case)
        rep = report.to_dict()
        meta = dict(base, status="done", reason="; ".join(merge_warnings(p, case.hosts)) or None,
                    hosts=case.hosts,
                    problem_checks=sorted({f["check"] for f in rep["findings"] if f["status"] == "problem"}),
                    top_causes=sorted({next((c["id"] for c in f["causes"] if c["verdict"] != "ruled_out"), "")
                                       for f in rep["findings"] if f["status"] == "problem"} - {""}),
                    inventory_failures=sum(1 for e in case.inventory
                                           if e.status in ("failed", "partial", "rejected")),
                    files=len(case.inventory), rows=len(case.table),
                    duration_s=round(time.monotonic() - started, 3))
        store.write_case(case_id, report, meta)
        return meta
    except MemoryError as exc:
        reason = _memory_reason(str(exc) or None)
    except Exception as exc:  # noqa: BLE001 - one case must not stop the batch
        reason = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc(limit=3)
        reason += f" [{tb.strip().splitlines()[-3].strip() if len(tb.splitlines()) > 2 else ''}]"
    meta = dict(base, status="failed", reason=reason, duration_s=round(time.monotonic() - started, 3))
    store.write_failure(case_id, meta)
    return meta


def _set_memory_limit(memory_mb: int | None) -> None:
    """Cap this process's address space (RLIMIT_AS).

    An address-space cap is what the kernel can enforce per process without
    cgroups: an allocation past it fails (MemoryError in Python, an abort in
    some native code) instead of pushing the machine into swap or the OOM
    killer. It counts mapped, not resident, memory, so the limit must leave
    room for the interpreter, its libraries and thread stacks (a forked
    worker starts with the parent's mappings, typically 0.5-2 GiB).
    """
    global _memory_limit_mb
    if memory_mb:
        import resource
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        _memory_limit_mb = memory_mb


def _child(path: str, store_dir: str, case_id: str, load_kw: dict[str, Any],
           memory_mb: int | None, conn, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    _set_memory_limit(memory_mb)
    try:
        conn.send(process_case(path, store_dir, case_id, load_kw))
    finally:
        conn.close()


def _warm_up() -> None:
    """Import every source, check and renderer in the parent before forking.

    Forked workers inherit the imported modules (copy-on-write), so each case
    does not pay the imports and the registry scans again; measured on a
    small case this is most of its run time.
    """
    from . import checks, report, sources  # noqa: F401
    from .render import html, markdown, text  # noqa: F401

    sources.registered()
    checks.registered()


def _run_local(todo: list[tuple[Path, str]], store: Store, opts: BatchOptions,
               on_result: Callable[[CaseResult], None]) -> None:
    from multiprocessing.connection import wait

    _warm_up()
    ctx = mp.get_context("fork")
    pending = list(todo)
    running: dict[Any, tuple[Path, str, Any, float]] = {}
    works: dict[Any, Path] = {}
    while pending or running:
        while pending and len(running) < max(1, opts.jobs):
            path, cid = pending.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            # The parent owns each case's work root, so a worker killed for
            # its time or memory limit cannot leave extracted files behind.
            work = _case_work_root(cid)
            proc = ctx.Process(target=_child, args=(str(path), str(store.root), cid,
                                                    {**opts.load, "work_root": str(work)},
                                                    opts.memory_mb, child, os.getpid()),
                               daemon=True)
            proc.start()
            child.close()
            running[proc] = (path, cid, parent, time.monotonic())
            works[proc] = work
        # Sleep until a worker reports or ends, or the nearest deadline: a
        # fixed polling interval would leave a core idle between cases.
        now = time.monotonic()
        next_deadline = min(started + opts.timeout_s for _, _, _, started in running.values())
        handles = [conn for _, _, conn, _ in running.values()] + [p.sentinel for p in running]
        wait(handles, timeout=max(0.0, min(1.0, next_deadline - now)))
        for proc, (path, cid, conn, started) in list(running.items()):
            if proc not in running:
                continue
            elapsed = time.monotonic() - started
            if conn.poll():
                try:
                    meta = conn.recv()
                except EOFError:
                    meta = None
                proc.join(5)
                del running[proc]
                shutil.rmtree(works.pop(proc), ignore_errors=True)
                on_result(_result(path, cid, meta, elapsed, proc.exitcode, store))
            elif not proc.is_alive():
                del running[proc]
                shutil.rmtree(works.pop(proc), ignore_errors=True)
                on_result(_result(path, cid, None, elapsed, proc.exitcode, store))
            elif elapsed > opts.timeout_s:
                proc.kill()
                proc.join(5)
                del running[proc]
                shutil.rmtree(works.pop(proc), ignore_errors=True)
                store.discard_staging(cid)  # it may have died mid-write
                meta = {"case": cid, "name": case_name(path), "source": case_source(path), "status": "failed",
                        "reason": f"time limit of {opts.timeout_s:g} s exceeded",
                        "duration_s": round(elapsed, 3)}
                store.write_failure(cid, meta)
                on_result(_result(path, cid, meta, elapsed, None, store))


def _case_work_root(case_id: str) -> Path:
    """A private folder for one case's extracted archives."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"exa-batch-{case_id[:8]}-"))


def run_case_subprocess(path: str, store_dir: str, case_id: str, load_kw: dict[str, Any],
                        timeout_s: float, memory_mb: int | None) -> dict[str, Any]:
    """Run one case in a child interpreter with the batch limits (dask tasks)."""
    work = _case_work_root(case_id)
    try:
        return _run_in_child(path, store_dir, case_id, {**load_kw, "work_root": str(work)},
                             timeout_s, memory_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_in_child(path: str, store_dir: str, case_id: str, load_kw: dict[str, Any],
                  timeout_s: float, memory_mb: int | None) -> dict[str, Any]:
    import json
    import subprocess
    import sys

    started = time.monotonic()
    cmd = [sys.executable, "-m", "analyzer.batch", path, store_dir, case_id,
           json.dumps(load_kw), str(memory_mb or 0)]
    base = {"case": case_id, "name": case_name(Path(path)), "source": case_source(path),
            "status": "failed"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, _PARENT_ENV: str(os.getpid())})
    except subprocess.TimeoutExpired:
        Store(Path(store_dir)).discard_staging(case_id)
        meta = dict(base, reason=f"time limit of {timeout_s:g} s exceeded",
                    duration_s=round(time.monotonic() - started, 3))
        Store(Path(store_dir)).write_failure(case_id, meta)
        return meta
    if proc.returncode == 0 and proc.stdout.strip():
        return json.loads(proc.stdout.strip().splitlines()[-1])
    Store(Path(store_dir)).discard_staging(case_id)
    tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    meta = dict(base, reason=_death_reason(proc.returncode) + (f": {tail}" if tail else ""),
                duration_s=round(time.monotonic() - started, 3))
    Store(Path(store_dir)).write_failure(case_id, meta)
    return meta


def _death_reason(exitcode: int | None) -> str:
    """Why a worker ended without sending its case's result."""
    if exitcode is None or exitcode == 0:
        return "worker ended without a result"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker died (killed by {name}; memory limit or crash)"
    return f"worker died (exit code {exitcode}; memory limit or crash)"


def _result(path: Path, cid: str, meta: dict[str, Any] | None, elapsed: float,
            exitcode: int | None, store: Store) -> CaseResult:
    if meta is None:
        store.discard_staging(cid)
        reason = _death_reason(exitcode)
        meta = {"case": cid, "name": case_name(path), "source": case_source(path), "status": "failed",
                "reason": reason, "duration_s": round(elapsed, 3)}
        store.write_failure(cid, meta)
    return CaseResult(cid, meta["name"], meta["source"], meta["status"], meta.get("reason"),
                      meta.get("duration_s", 0.0))


def _run_dask(todo: list[tuple[Path, str]], store: Store, opts: BatchOptions,
              on_result: Callable[[CaseResult], None]) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if opts.scheduler:
        client = Client(opts.scheduler)
    else:
        mem = f"{opts.memory_mb}MiB" if opts.memory_mb else "auto"
        cluster = LocalCluster(n_workers=max(1, opts.jobs), threads_per_worker=1, processes=True,
                               memory_limit=mem, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {client.submit(run_case_subprocess, str(path), str(store.root.resolve()), cid,
                                 opts.load, opts.timeout_s, opts.memory_mb,
                                 key=f"case-{cid}", pure=False): (path, cid)
                   for path, cid in todo}
        for fut in as_completed(list(futures)):
            path, cid = futures[fut]
            try:
                meta = fut.result()
            except Exception as exc:  # noqa: BLE001 - worker death, cancellation
                meta = {"case": cid, "name": case_name(path), "source": case_source(path),
                        "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                        "duration_s": 0.0}
                store.write_failure(cid, meta)
            on_result(_result(path, cid, meta, meta.get("duration_s", 0.0), 0, store))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(inputs: Iterable[str | os.PathLike[str]], store_dir: str | os.PathLike[str],
              options: BatchOptions | None = None,
              progress: Callable[[CaseResult, int, int], None] | None = None) -> list[CaseResult]:
    """Analyze every case of ``inputs`` into the store at ``store_dir``.

    Returns one result per case (skipped ones included) and rewrites the
    store's summary (Parquet and CSV).
    """
    opts = options or BatchOptions()
    store = Store(Path(store_dir))
    store.clean_staging()
    cases = discover_cases(inputs)
    results: list[CaseResult] = []
    todo: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for path in cases:
        try:
            cid = content_hash(path)
        except OSError as exc:  # one unreadable case must not stop the batch
            results.append(CaseResult(f"unreadable-{len(results)}", case_name(path),
                                      case_source(path), "failed",
                                      f"cannot read the case: {exc.strerror or exc}"))
            continue
        if cid in seen or (not opts.force and store.is_done(cid)):
            meta = store.meta(cid) or {}
            results.append(CaseResult(cid, case_name(path), case_source(path), "skipped",
                                      "already in the store" if cid not in seen else "duplicate input",
                                      meta.get("duration_s", 0.0)))
            seen.add(cid)
            continue
        seen.add(cid)
        todo.append((path, cid))
    total = len(cases)

    def on_result(res: CaseResult) -> None:
        results.append(res)
        if progress:
            progress(res, len(results), total)

    for res in results:
        if progress:
            progress(res, results.index(res) + 1, total)
    if todo:
        if opts.engine == "local":
            _run_local(todo, store, opts, on_result)
        elif opts.engine == "dask":
            _run_dask(todo, store, opts, on_result)
        else:
            raise ValueError(f"unknown engine {opts.engine!r} (local or dask)")
    store.write_summary()
    return results


def _main(argv: list[str]) -> None:
    """Child-interpreter entry used by :func:`run_case_subprocess`."""
    import json

    path, store_dir, case_id, load_json, memory_mb = argv
    die_with_parent(int(os.environ.get(_PARENT_ENV) or os.getppid()))
    _set_memory_limit(int(memory_mb) or None)
    print(json.dumps(process_case(path, store_dir, case_id, json.loads(load_json))))


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
