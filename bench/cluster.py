"""Issue #12 on PostgreSQL: posts/s with 1 and 2 ``tidings serve`` processes, deliveries/s with
1 and 2 ``tidings worker`` processes, the cross-process event latency beside the same on one
process, and PostgreSQL's share of the CPU — all in one run.

    .venv/bin/python bench/cluster.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
        [--runs 3] [--parts posts,deliveries,latency] [--concurrency 16] [--duration 8]
        [--warmup 2] [--floor ../shared/bench-floor/post_floor.py] [--posts 400] [--hooks 20]
        [--worker-concurrency 16] [--latency-posts 200] [--latency-rate 20] [--baseline DIR]

Each round, every measurement on a fresh database, in an order that rotates by round:

- **posts**: the floor (the shared ``post_floor.py``: the bare post handler, on SQLite), then
  Tidings with 1 and with 2 ``tidings serve`` processes; ``--concurrency`` aiohttp clients (this
  process, one connection each) spread round-robin across the servers post one message after
  another for ``--duration`` s after ``--warmup`` s. Posts/s as a ratio to the floor of the same
  round, and 2 servers over 1. ``--baseline DIR`` adds 1 and 2 servers of another checkout (its
  ``src``; e.g. a ``git worktree`` of an earlier commit) to the same rounds.
- **deliveries**: one ``tidings serve`` takes ``--posts`` posts through the API in a channel with
  ``--hooks`` hooks, its worker off, so the deliveries queue; then 1 or 2 ``tidings worker``
  processes start together and drain them into ``bench/recv_count.py`` (it answers ``null``: no
  reply posts). The rate counts the deliveries written back after every worker said it was
  running, over the time to the last write-back (the rows' own ``update_at``): start-up is left
  out. The floor is the shared ``sender.py`` against the same receiver with ``--concurrency``
  connections, right before and right after (their mean: these machines drift within a minute).
- **latency**: two ``tidings serve``, A and B, and a websocket of the same user on each; one post
  every 1/``--latency-rate`` s through A; the time from sending the post to its ``posted`` event
  on A's socket (one process) and on B's (across processes), p50/p99. Where no event reaches B (a
  checkout without the cluster event stream), the cross-process figures are "not available".

For posts and deliveries, the CPU each kind of process used in the counted window
(``cpu_share.py``: Tidings, this process's clients, PostgreSQL's backends of the benchmark's
database, PostgreSQL's shared processes), per post or delivery and in busy cores; and, from
``pg_stat_database`` and ``pg_stat_wal``, commits and WAL flushes per post or delivery
(``pg_stat_wal`` counts the whole server: other databases' work shows there too). The summary
does the arithmetic: at the CPU measured per post, how many ``tidings serve`` processes, each at
one full core, one core of PostgreSQL carries; the same for workers and deliveries.

Nothing is pinned: servers, workers, PostgreSQL, the receiver and the clients share the two
cores, and the busy-core figures show what limits the 2-over-1 ratio.
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpu_share import KINDS, Sample, sample, used
from e2e_api import client_floor, make_posts, prepare
from posts_per_second import (
    client,
    free_port,
    fresh_postgres,
    measure_floor,
    percentile,
    spread,
    stop,
)
from served import (
    FLOOR,
    PY,
    Admin,
    counting_receiver,
    create_channels,
    first_admin,
    forget_counts,
    receiver_counts,
    wait_for_deliveries,
    wait_until_pinged,
)
from websockets.asyncio.client import connect

BASELINE = " (baseline)"  # the suffix of the contenders served from ``--baseline``
START_SECONDS = 60.0  # for a process to come up (imports, migrations on a fresh database)
DRAIN_SECONDS = 120.0
LATENCY_WARMUP_POSTS = 20
EVENT_WAIT_SECONDS = 5.0  # after the last post, for its events to arrive


class Fleet:
    """The Tidings processes of one measurement, all on one database, stopped together.

    Every process gets its own free port, the worker off in ``serve`` (``worker`` processes do
    the deliveries when there are any), output in a log in ``folder`` whose tail is printed when
    the measurement fails."""

    def __init__(self, database_url: str, folder: Path, source: Path | None = None) -> None:
        self.database_url = database_url
        self.folder = folder
        self.source = source
        self.servers: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def _start(
        self, command: str, settings: dict[str, str], stdout: int | None = None
    ) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env |= {
            "TIDINGS_DATABASE_URL": self.database_url,
            "TIDINGS_DATA_DIR": str(self.folder),
            "TIDINGS_RUN_WORKER": "false",
            **settings,
        }
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        number = len(self.servers) + len(self.workers)
        with (self.folder / f"{command}-{number}.log").open("ab") as log:
            return subprocess.Popen(
                [PY, "-m", "tidings", command],
                env=env,
                stdout=log if stdout is None else stdout,
                stderr=log,
            )

    def migrate(self) -> None:
        """``tidings migrate``, once, before any process starts: processes that start together
        on an empty database would each try to create the schema."""
        process = self._start("migrate", {})
        if process.wait(START_SECONDS) != 0:
            raise RuntimeError("tidings migrate failed")

    def serve(self, count: int) -> list[str]:
        """``count`` ``tidings serve`` processes, started together; their base URLs once each
        answers its ping."""
        started = []
        for _ in range(count):
            listen = f"127.0.0.1:{free_port()}"
            self.servers.append(self._start("serve", {"TIDINGS_LISTEN": listen}))
            started.append((f"http://{listen}", self.servers[-1]))
        for base, process in started:
            wait_until_pinged(base, process, START_SECONDS)
        return [base for base, _ in started]

    def work(self, count: int, concurrency: int) -> None:
        """``count`` ``tidings worker`` processes, started together; returns once each has said
        it is running (its first claim may already be under way)."""
        settings = {"TIDINGS_WORKER_CONCURRENCY": str(concurrency)}
        started = [self._start("worker", settings, subprocess.PIPE) for _ in range(count)]
        self.workers += started
        readers = [_said(process, "worker running") for process in started]
        for reader in readers:
            if not reader.wait(START_SECONDS):
                raise RuntimeError("a tidings worker did not start")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (*self.servers, *self.workers)]

    def stop(self) -> None:
        for process in (*self.workers, *self.servers):
            stop(process)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}:\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )


def _said(process: subprocess.Popen[bytes], text: str) -> threading.Event:
    """Set once ``process`` prints a line containing ``text`` on its standard output."""
    said = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if text in line.decode(errors="replace"):
                said.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return said


@contextlib.contextmanager
def fleet_on_fresh_database(server: str, source: Path | None = None) -> Iterator[Fleet]:
    """A new database on the PostgreSQL ``server`` and a :class:`Fleet` (of this checkout, or
    of ``source``, another checkout's ``src``) on it; on a failure the processes' logs are
    printed."""
    with (
        fresh_postgres(server) as url,
        tempfile.TemporaryDirectory(prefix="tidings-cluster-") as folder,
    ):
        assert url is not None
        fleet = Fleet(url, Path(folder), source)
        try:
            fleet.migrate()
            yield fleet
        except BaseException:
            print(fleet.logs(), file=sys.stderr)
            raise
        finally:
            fleet.stop()


def psql_rows(database_url: str, query: str) -> list[list[str]]:
    """``query``'s result, each row as text fields."""
    out = subprocess.run(
        ["psql", database_url, "-tAc", query], capture_output=True, text=True, check=True
    )
    return [line.split("|") for line in out.stdout.strip().splitlines()]


def psql(database_url: str, query: str) -> list[str]:
    """The one row of ``query``'s result, as text fields."""
    (row,) = psql_rows(database_url, query)
    return row


COUNTERS = (
    "SELECT xact_commit, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
    " (SELECT wal_sync FROM pg_stat_wal)"
    " FROM pg_stat_database WHERE datname = current_database()"
)


@dataclass(frozen=True)
class Snapshot:
    """CPU by kind of process and PostgreSQL's counters at one moment. Backends report their
    counters at most once a second; in a steady window the lag is the same at both ends."""

    cpu: Sample
    commits: int
    wal_bytes: int
    wal_syncs: int
    # Per table: (scans, rows written), from pg_stat_user_tables.
    tables: dict[str, tuple[int, int]]


TABLES = (
    "SELECT relname, seq_scan + coalesce(idx_scan, 0), n_tup_ins + n_tup_upd + n_tup_del"
    " FROM pg_stat_user_tables"
)


def snapshot(fleet: Fleet, pids: list[int]) -> Snapshot:
    database = fleet.database_url.rsplit("/", 1)[1]
    cpu = sample(database, pids)
    commits, wal_bytes, wal_syncs = (int(v) for v in psql(fleet.database_url, COUNTERS))
    tables = {
        name: (int(scans), int(writes))
        for name, scans, writes in psql_rows(fleet.database_url, TABLES)
    }
    return Snapshot(cpu, commits, wal_bytes, wal_syncs, tables)


def table_work(start: Snapshot, end: Snapshot, units: int) -> dict[str, list[float]]:
    """Scans and rows written per unit, by table (those touched in the window): where the
    commits went."""
    work = {}
    for name, (scans, writes) in sorted(end.tables.items()):
        before = start.tables.get(name, (0, 0))
        if (scans, writes) != before:
            work[name] = [
                round((scans - before[0]) / units, 3),
                round((writes - before[1]) / units, 3),
            ]
    return work


def window(start: Snapshot, end: Snapshot, units: int) -> dict[str, Any]:
    """What a window of ``units`` posts or deliveries cost: CPU ms per unit and busy cores by
    kind of process, and PostgreSQL's commits, WAL flushes and WAL bytes per unit."""
    spent = used(start.cpu, end.cpu)
    per = max(units, 1)
    commits = end.commits - start.commits
    return {
        "cpu_ms_per_unit": {k: round(1000 * spent[k] / per, 3) for k in KINDS},
        "cores_busy": {
            **{k: round(spent[k] / spent["wall"], 2) for k in (*KINDS, "machine")},
            # Whatever else the machine ran meanwhile (other benchmarks, test suites).
            "others": round((spent["machine"] - sum(spent[k] for k in KINDS)) / spent["wall"], 2),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
        "commits_per_unit": round(commits / per, 3),
        "commits_per_second": round(commits / spent["wall"], 1),
        "wal_syncs_per_unit": round((end.wal_syncs - start.wal_syncs) / per, 3),
        "wal_bytes_per_unit": round((end.wal_bytes - start.wal_bytes) / per),
        "table_scans_and_writes_per_unit": table_work(start, end, per),
    }


# --- posts ----------------------------------------------------------------------------------------


def measure_posts(
    args: argparse.Namespace, servers: int, source: Path | None = None
) -> dict[str, Any]:
    """Posts/s through ``servers`` ``tidings serve`` processes (of this checkout or ``source``)
    on a fresh database."""
    with fleet_on_fresh_database(args.postgres, source) as fleet:
        bases = fleet.serve(servers)

        async def run() -> dict[str, Any]:
            admin = await first_admin(bases[0])
            (channel_id,) = await create_channels(admin, ["load"])
            return await post_for_a_while(fleet, bases, admin, channel_id, args)

        result = asyncio.run(run())
    return {"benchmark": "POST /api/v4/posts", "servers": servers, **result}


async def post_for_a_while(
    fleet: Fleet, bases: list[str], admin: Admin, channel_id: str, args: argparse.Namespace
) -> dict[str, Any]:
    """``args.concurrency`` clients, client *n* on server *n mod len(bases)*, posting for the
    warm-up and then ``args.duration`` counted seconds, with a snapshot at either end."""
    latencies: list[float] = []
    errors: list[int] = []
    counting_from = time.monotonic() + args.warmup
    stop_at = counting_from + args.duration
    marks: dict[str, Snapshot] = {}

    async def mark(name: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        marks[name] = await asyncio.to_thread(snapshot, fleet, fleet.pids)

    await asyncio.gather(
        mark("start", counting_from),
        mark("end", stop_at),
        *(
            client(
                bases[n % len(bases)],
                admin.token,
                channel_id,
                n,
                counting_from,
                stop_at,
                latencies,
                errors,
            )
            for n in range(args.concurrency)
        ),
    )
    ordered = sorted(latencies)
    return {
        "posts": len(latencies),
        "errors": len(errors),
        "posts_per_second": round(len(latencies) / args.duration, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 50), 2),
            "p99": round(percentile(ordered, 99), 2),
        },
        **window(marks["start"], marks["end"], len(latencies)),
    }


# --- deliveries -----------------------------------------------------------------------------------


SUCCEEDED = (
    "SELECT count(*), coalesce(max(update_at), 0) FROM deliveries WHERE status = 'succeeded'"
)


def succeeded_since(fleet: Fleet, since_ms: int) -> tuple[int, int]:
    """(deliveries written back as succeeded at or after ``since_ms``, the last one's time)."""
    since = int(since_ms)  # a number, so safe to put in the query's text
    query = f"{SUCCEEDED} AND update_at >= {since}"
    count, last = psql(fleet.database_url, query)
    return int(count), int(last)


def measure_deliveries(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """Deliveries/s of ``workers`` ``tidings worker`` processes draining a queue of
    ``args.posts`` × ``args.hooks`` deliveries made through the API."""
    with (
        counting_receiver() as receiver,
        fleet_on_fresh_database(args.postgres) as fleet,
    ):
        (base,) = fleet.serve(1)
        admin, channel_id = asyncio.run(prepare(base, receiver, args.hooks))
        failures = asyncio.run(make_posts(admin, channel_id, args.posts, args.concurrency))
        expected = (args.posts - len(failures)) * args.hooks
        floor_before = client_floor(f"{receiver}/floor", args.concurrency, args.sender)
        asyncio.run(forget_counts(receiver))
        fleet.work(workers, args.worker_concurrency)
        running_ms = int(time.time() * 1000)
        worker_pids = [p.pid for p in fleet.workers]
        start = snapshot(fleet, worker_pids)
        counts = asyncio.run(wait_for_deliveries(receiver, expected, DRAIN_SECONDS))
        end = snapshot(fleet, worker_pids)
        time.sleep(0.5)  # the last write-backs, and late repeats if any
        counted, last_ms = succeeded_since(fleet, running_ms)
        counts = asyncio.run(receiver_counts(receiver))
        floor_after = client_floor(f"{receiver}/floor", args.concurrency, args.sender)
    seconds = (last_ms - running_ms) / 1000
    rate = counted / seconds if seconds > 0 else 0.0
    floor = (floor_before["rps"] + floor_after["rps"]) / 2
    return {
        "benchmark": "deliveries (tidings worker)",
        "workers": workers,
        "deliveries_expected": expected,
        "deliveries_received": counts["deliveries"],
        "lost": max(0, expected - counts["deliveries"]),
        "duplicates": counts["requests"] - counts["deliveries"],
        "post_errors": len(failures),
        "counted": counted,
        "seconds": round(seconds, 3),
        "deliveries_per_second": round(rate, 1),
        "floor_rps": round(floor, 1),
        "floor_before_after": [floor_before["rps"], floor_after["rps"]],
        "ratio_to_floor": round(rate / floor, 3),
        **window(start, end, counted),
    }


# --- latency --------------------------------------------------------------------------------------


async def _listen(
    base: str, token: str, arrivals: dict[str, float], ready: asyncio.Event, news: asyncio.Event
) -> None:
    """Note when each ``posted`` event arrives on a websocket to ``base``; set ``news``."""
    url = base.replace("http://", "ws://") + "/api/v4/websocket"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.recv()  # hello
        ready.set()
        async for message in ws:
            arrived = time.perf_counter()
            frame = json.loads(message)
            if frame.get("event") == "posted":
                arrivals[json.loads(frame["data"]["post"])["id"]] = arrived
                news.set()


async def _await_all(
    sent: dict[str, float], sockets: list[dict[str, float]], news: asyncio.Event
) -> None:
    """Until every sent post has arrived on every socket, or ``EVENT_WAIT_SECONDS`` pass."""
    deadline = time.perf_counter() + EVENT_WAIT_SECONDS
    while not all(sent.keys() <= arrivals.keys() for arrivals in sockets):
        news.clear()
        try:
            await asyncio.wait_for(news.wait(), deadline - time.perf_counter())
        except TimeoutError:
            return


def _latencies(sent: dict[str, float], arrivals: dict[str, float]) -> dict[str, Any]:
    found = sorted((arrivals[i] - t) * 1000 for i, t in sent.items() if i in arrivals)
    if not found:
        return {"available": False, "missing": len(sent)}
    return {
        "available": True,
        "p50_ms": round(percentile(found, 50), 2),
        "p99_ms": round(percentile(found, 99), 2),
        "max_ms": round(found[-1], 2),
        "missing": len(sent) - len(found),
    }


def measure_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Post on A → ``posted`` on a socket of A and on a socket of B."""
    with fleet_on_fresh_database(args.postgres) as fleet:
        a, b = fleet.serve(2)

        async def run() -> dict[str, Any]:
            admin = await first_admin(a)
            (channel_id,) = await create_channels(admin, ["latency"])
            on_a: dict[str, float] = {}
            on_b: dict[str, float] = {}
            ready, news = [asyncio.Event(), asyncio.Event()], asyncio.Event()
            listeners = [
                asyncio.create_task(_listen(a, admin.token, on_a, ready[0], news)),
                asyncio.create_task(_listen(b, admin.token, on_b, ready[1], news)),
            ]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
            sent: dict[str, float] = {}
            interval = 1 / args.latency_rate
            async with admin.session() as session:
                next_at = time.perf_counter()
                for n in range(LATENCY_WARMUP_POSTS + args.latency_posts):
                    started = time.perf_counter()
                    body = {"channel_id": channel_id, "message": f"latency {n}"}
                    async with session.post("/api/v4/posts", json=body) as response:
                        post_id = (await response.json())["id"]
                    if n >= LATENCY_WARMUP_POSTS:
                        sent[post_id] = started
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            await _await_all(sent, [on_a, on_b], news)
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            return {
                "one_process": _latencies(sent, on_a),
                "across_processes": _latencies(sent, on_b),
            }

        result = asyncio.run(run())
    return {
        "benchmark": "post on A → posted event",
        "posts": args.latency_posts,
        "posts_per_second": args.latency_rate,
        **result,
    }


# --- rounds and the summary -----------------------------------------------------------------------


def rotated(names: list[str], number: int) -> list[str]:
    shift = number % len(names)
    return names[shift:] + names[:shift]


def show(summary: dict[str, Any], number: int, name: str) -> dict[str, Any]:
    summary["round"], summary["contender"] = number + 1, name
    print(json.dumps(summary), flush=True)
    return summary


def busy_medians(results: list[dict[str, Any]]) -> dict[str, float]:
    """The median busy cores of each kind of process over ``results``."""
    return {
        k: round(statistics.median(r["cores_busy"][k] for r in results), 2)
        for k in (*KINDS, "machine", "others")
    }


def postgres_ms(result: dict[str, Any]) -> float:
    cpu = result["cpu_ms_per_unit"]
    return float(cpu["postgres"] + cpu["postgres_shared"])


def capacity(results: list[dict[str, Any]], process: str) -> dict[str, Any]:
    """From the CPU per unit of work: a Tidings process at one full core does 1000 / (its ms per
    unit) units a second and a core of PostgreSQL 1000 / (PostgreSQL's ms per unit), so one core
    of PostgreSQL carries (Tidings' ms per unit) / (PostgreSQL's) such processes."""
    return {
        f"{process}_per_postgres_core": spread(
            [r["cpu_ms_per_unit"]["tidings"] / postgres_ms(r) for r in results]
        ),
        "postgres_cpu_ms_per_unit": spread([postgres_ms(r) for r in results]),
        "tidings_cpu_ms_per_unit": spread([r["cpu_ms_per_unit"]["tidings"] for r in results]),
        "units_per_second_per_postgres_core": spread([1000 / postgres_ms(r) for r in results]),
    }


def summarise(found: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    posts = found.get("posts")
    if posts:
        floors = [r["posts_per_second"] for r in posts["floor"]]
        tidings = [name for name in posts if name != "floor"]
        out["posts"] = {
            "ratio_to_floor": {
                name: spread(
                    [r["posts_per_second"] / f for r, f in zip(posts[name], floors, strict=True)]
                )
                for name in tidings
            },
            "posts_per_second": {
                name: spread([r["posts_per_second"] for r in results])
                for name, results in posts.items()
            },
            **{
                f"2_servers_over_1{suffix}": spread(
                    [
                        t["posts_per_second"] / o["posts_per_second"]
                        for o, t in zip(
                            posts[f"1 server{suffix}"], posts[f"2 servers{suffix}"], strict=True
                        )
                    ]
                )
                for suffix in ("", BASELINE)
                if f"1 server{suffix}" in posts
            },
            "cores_busy_median": {name: busy_medians(posts[name]) for name in tidings},
            "commits_per_post": {
                name: spread([r["commits_per_unit"] for r in posts[name]]) for name in tidings
            },
            "wal_syncs_per_post": {
                name: spread([r["wal_syncs_per_unit"] for r in posts[name]]) for name in tidings
            },
            "capacity": {name: capacity(posts[name], "serve_processes") for name in tidings},
        }
    deliveries = found.get("deliveries")
    if deliveries:
        one, two = deliveries["1 worker"], deliveries["2 workers"]
        out["deliveries"] = {
            "ratio_to_floor": {
                name: spread([r["ratio_to_floor"] for r in deliveries[name]]) for name in deliveries
            },
            "deliveries_per_second": {
                name: spread([r["deliveries_per_second"] for r in deliveries[name]])
                for name in deliveries
            },
            "2_workers_over_1": spread(
                [
                    t["deliveries_per_second"] / o["deliveries_per_second"]
                    for o, t in zip(one, two, strict=True)
                ]
            ),
            "cores_busy_median": {name: busy_medians(deliveries[name]) for name in deliveries},
            "lost": sum(r["lost"] for r in one + two),
            "duplicates": sum(r["duplicates"] for r in one + two),
            "commits_per_delivery": spread([r["commits_per_unit"] for r in one + two]),
            **capacity(one + two, "worker_processes"),
        }
    latency = found.get("latency", {}).get("A and B")
    if latency:
        out["latency"] = {
            where: (
                {q: spread([r[where][q] for r in latency]) for q in ("p50_ms", "p99_ms")}
                if all(r[where]["available"] for r in latency)
                else "not available: no posted event reached B's socket (no cluster event stream)"
            )
            for where in ("one_process", "across_processes")
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres", required=True, help="a PostgreSQL server's URL (any database)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", default="posts,deliveries,latency")
    parser.add_argument("--concurrency", type=int, default=16, help="posting clients, floor's too")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    parser.add_argument("--floor", type=Path, default=FLOOR / "post_floor.py")
    parser.add_argument("--sender", type=Path, default=FLOOR / "sender.py")
    parser.add_argument("--posts", type=int, default=400, help="posts queued for the workers")
    parser.add_argument("--hooks", type=int, default=20, help="hooks on the channel")
    parser.add_argument("--worker-concurrency", type=int, default=16)
    parser.add_argument("--latency-posts", type=int, default=200)
    parser.add_argument("--latency-rate", type=float, default=20.0, help="posts per second")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout to measure posts/s beside this one"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    contenders = ["floor", "1 server", "2 servers"]
    baseline = None
    if args.baseline is not None:
        baseline = args.baseline.resolve() / "src"
        contenders += [f"1 server{BASELINE}", f"2 servers{BASELINE}"]
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for number in range(args.runs):
        if "posts" in parts:
            posts = found.setdefault("posts", {name: [] for name in contenders})
            for name in rotated(list(posts), number):
                if name == "floor":
                    result = measure_floor(args)
                else:
                    source = baseline if name.endswith(BASELINE) else None
                    result = measure_posts(args, 2 if name.startswith("2") else 1, source)
                posts[name].append(show(result, number, name))
        if "deliveries" in parts:
            deliveries = found.setdefault("deliveries", {"1 worker": [], "2 workers": []})
            for name in rotated(list(deliveries), number):
                result = measure_deliveries(args, 1 if name == "1 worker" else 2)
                deliveries[name].append(show(result, number, name))
        if "latency" in parts:
            latency = found.setdefault("latency", {"A and B": []})
            latency["A and B"].append(show(measure_latency(args), number, "A and B"))
    print(json.dumps({"summary": summarise(found), "runs": args.runs}, indent=1))


if __name__ == "__main__":
    main()
