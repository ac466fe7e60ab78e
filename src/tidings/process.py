"""Process-wide tuning, applied once by the commands that run the server or a worker.

The SQLite driver runs each query on a helper thread. With CPython's default GIL switch
interval (5 ms), a busy event loop makes that thread wait up to 5 ms for every query it hands
back; the delivery worker does several per batch, so that wait, not the database, became its
bottleneck (bench/deliveries.py). A shorter interval lets the thread in promptly.
"""

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from tidings.config import Settings

T = TypeVar("T")


def tune(settings: Settings) -> None:
    """Apply the settings that belong to the whole process."""
    sys.setswitchinterval(settings.gil_switch_interval_seconds)


def log_to_stderr() -> None:
    """Every logger's INFO and above, timestamped, on stderr (where journald and ``docker logs``
    collect it). Does nothing when this process has set up logging already."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (uvicorn[standard] brings it), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
