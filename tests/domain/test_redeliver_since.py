"""How ``tidings hook redeliver --since`` reads its WHEN: Unix ms, ISO 8601 with an offset, or a
span back from now; anything else is refused with a reason."""

import pytest

from tidings.domain.deliveries import since_ms

NOW = 1_764_669_600_000  # 2025-12-02T10:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1764662400000", 1_764_662_400_000),
        (" 42 ", 42),
        ("30s", NOW - 30_000),
        ("30m", NOW - 1_800_000),
        ("2h", NOW - 7_200_000),
        ("1d", NOW - 86_400_000),
        ("1w", NOW - 604_800_000),
        ("1h30m", NOW - 5_400_000),
        ("2025-12-02T08:00:00Z", NOW - 7_200_000),
        ("2025-12-02T09:00:00+01:00", NOW - 7_200_000),
        ("2025-12-02T08:00:00.123Z", NOW - 7_200_000 + 123),
        ("100000w", 0),
        ("1969-12-31T00:00:00Z", 0),
    ],
)
def test_readable_times(text: str, expected: int) -> None:
    """Each accepted form gives the Unix ms it means (never below 0)."""
    assert since_ms(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yesterday", "neither Unix ms"),
        ("", "neither Unix ms"),
        ("-5", "neither Unix ms"),
        ("1.5h", "neither Unix ms"),
        ("2h 30m", "neither Unix ms"),
        ("5y", "neither Unix ms"),
        ("\u0661\u0662", "neither Unix ms"),
        ("\u0661h", "neither Unix ms"),
        ("2025-12-02T08:00:00", "no time zone"),
        ("2025-12-02", "no time zone"),
    ],
)
def test_unreadable_times_say_why(text: str, reason: str) -> None:
    """A WHEN that could mean several things, or nothing, is a ValueError naming the problem."""
    with pytest.raises(ValueError, match=reason):
        since_ms(text, NOW)
