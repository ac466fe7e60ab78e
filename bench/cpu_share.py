"""Where the machine's CPU went during a benchmark's window, by kind of process: the Tidings
processes the benchmark started, the benchmark itself (its clients), PostgreSQL's backends that
serve the benchmark's database, and PostgreSQL's shared processes (WAL writer, checkpointer,
background writer, the postmaster).

Why: to say how many Tidings processes one PostgreSQL carries, a benchmark needs PostgreSQL's CPU
per post beside Tidings' own. psutil reads /proc. A backend names its database in its process
title ("postgres: 15/main: postgres DBNAME 127.0.0.1(40112) idle"), so the backends of other
databases on the same server (other benchmarks, test suites) are left out; the shared processes
work for every database, so theirs is an upper bound. A process that exits inside the window
takes its CPU with it; Tidings keeps its pooled connections open, so that is rare.
"""

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

KINDS = ("tidings", "clients", "postgres", "postgres_shared")


@dataclass(frozen=True)
class Sample:
    """Cumulative CPU seconds per kind and pid, the machine's busy seconds, and when."""

    at: float
    machine_busy: float
    by_kind: dict[str, dict[int, float]]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _postgres_kind(title: str, database: str) -> str:
    """``postgres`` (a backend of ``database``), ``postgres_shared`` or "" (another database's)."""
    words = title.split()
    if database in words:
        return "postgres"
    # A backend's title ends in "HOST(PORT) STATE"; shared processes have no peer.
    return "" if any("(" in word and word.endswith(")") for word in words) else "postgres_shared"


def sample(database: str, tidings_pids: Sequence[int]) -> Sample:
    """CPU used so far by each kind of process (see the module's docstring)."""
    by_kind: dict[str, dict[int, float]] = {kind: {} for kind in KINDS}
    for pid in tidings_pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            by_kind["tidings"][pid] = _cpu(psutil.Process(pid))
    by_kind["clients"][os.getpid()] = _cpu(psutil.Process())
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] != "postgres":
            continue
        kind = _postgres_kind(" ".join(process.info["cmdline"] or ()), database)
        if kind:
            with contextlib.suppress(psutil.NoSuchProcess):
                by_kind[kind][process.pid] = _cpu(process)
    times = psutil.cpu_times()
    # Guest time is already inside user time on Linux; idle and iowait are not work.
    busy = (
        times.user
        + times.system
        + sum(getattr(times, name, 0.0) for name in ("nice", "irq", "softirq", "steal"))
    )
    return Sample(time.monotonic(), busy, by_kind)


def used(start: Sample, end: Sample) -> dict[str, float]:
    """CPU seconds of each kind between two samples (a process born between them counts from
    zero), the machine's busy seconds (``machine``) and the wall seconds (``wall``)."""
    spent = {
        kind: sum(cpu - start.by_kind[kind].get(pid, 0.0) for pid, cpu in pids.items())
        for kind, pids in end.by_kind.items()
    }
    spent["machine"] = end.machine_busy - start.machine_busy
    spent["wall"] = end.at - start.at
    return spent
