"""The one place that reads wall time.

Everything that needs "now" takes a Clock, so tests can move time without sleeping.
Must not import anything from the rest of the package.
"""

import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current time."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (Mattermost's timestamp unit)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards, for durations."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms
        self._mono = 0.0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both readings forward."""
        self._now_ms += int(seconds * 1000)
        self._mono += seconds
