"""How ``tidings serve`` runs its server: in this process, or as N processes on one port.

``--processes N`` (PostgreSQL only) makes this process a supervisor: it binds the listening
socket once and runs uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``), which
starts N fresh interpreters (``spawn``), each serving the inherited socket, so the kernel hands
each new connection to whichever child accepts it first. That supervisor

- replaces a child that dies or stops answering its health check (a pipe ping every 0.5 s),
- stops every child and itself when one fails at start-up (exit code 3: a database that refuses
  the lifespan start-up would fail every replacement the same way),
- on SIGTERM or SIGINT sends SIGTERM to every child and waits for them: each runs the app's
  lifespan shutdown (its webhook worker hands back what it claimed, requests under way finish),
- on SIGHUP replaces the children one at a time (each new one serving before its old one
  stops); migrations are not run again, so this is no way to upgrade.

Why uvicorn's supervisor rather than one of our own: it is the piece uvicorn's ``--workers``
runs, already tested for exactly these cases, and the children are plain uvicorn servers. What
it lacks, we add: a child whose supervisor was killed outright stops within a second, as on
SIGTERM (``_stop_when_orphaned``).

Each child builds its application itself (``serving_app``): its database pools, threads and
event loop are its own, never inherited. It receives the parent's ``Settings`` through the
pickled app factory, so the environment is read once, by the parent (``config.py``), and every
child serves with the same settings. Migrations run once, in the parent, before any child
starts.
"""

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from tidings import process
from tidings.app import create_app
from tidings.config import Settings

# How often a child checks that its supervisor is still there.
ORPHAN_CHECK_SECONDS = 1.0
logger = logging.getLogger(__name__)


def app_factory(settings: Settings, processes: int) -> Callable[[], FastAPI]:
    """What each of ``processes`` serving processes calls to build its application: picklable,
    so it travels to spawned children with the settings bound."""
    return partial(serving_app, settings, supervisor=os.getpid() if processes > 1 else 0)


def serving_app(settings: Settings, *, supervisor: int = 0) -> FastAPI:
    """The application as a serving process runs it (the factory each child calls, given its
    ``supervisor``'s pid)."""
    process.log_to_stderr()
    process.tune(settings)
    if supervisor:
        _stop_when_orphaned(supervisor)
    try:
        app = create_app(settings)
    except Exception:
        # uvicorn turns only a factory's TypeError into a start-up failure; anything else
        # would end this child with code 1, and its supervisor would restart it for ever.
        logger.exception("could not build the application")
        sys.exit(STARTUP_FAILURE)
    # The app's own objects (routes, schemas, table metadata) live as long as the process:
    # parked out of the collector, every full collection has that much less to walk.
    gc.freeze()
    return app


def _stop_when_orphaned(supervisor: int) -> None:
    """Stop this child, as SIGTERM does, once its supervisor is gone without having stopped it
    (SIGKILL, the OOM killer). uvicorn's children do not watch their parent: left running,
    they would keep the port, and a restarted supervisor could not bind it. The pid comes from
    the supervisor itself, so a child orphaned before it got here stops too."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def run(config: uvicorn.Config) -> bool:
    """Serve ``config`` (``config.workers`` processes) until SIGTERM or SIGINT; False when the
    server could not bind or start up."""
    if config.workers == 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        return server.started
    # The supervisor's own log (children started, died, replaced, stopped) is what an operator
    # reads to see the set: at INFO, in this process only; the children keep ``config``'s level.
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    return all(child.exitcode != STARTUP_FAILURE for child in supervisor.processes)
