"""The sanitiser every stored worker value passes: no NUL, no lone surrogate, within bounds."""

import time

from tidings.domain.storable import storable_header_text, storable_json, storable_text


def test_text_drops_nuls_and_replaces_lone_surrogates() -> None:
    """NULs vanish (as Mattermost strips them); a lone surrogate becomes U+FFFD."""
    assert storable_text("a\x00b\x00") == "ab"
    assert storable_text("x\ud800y\udfffz") == "x\ufffdy\ufffdz"
    assert storable_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"
    assert storable_text("\x00" * 10) == ""


def test_text_is_cut_to_its_column() -> None:
    """A limit bounds the result in code points, after NULs are dropped."""
    assert storable_text("\x00abcdef", 3) == "abc"
    assert storable_text("\u00e9" * 10, 4) == "\u00e9" * 4
    assert storable_text("short", 64) == "short"


def test_clean_ascii_is_returned_as_is() -> None:
    """The usual value is not copied."""
    value = "plain ascii " * 10
    assert storable_text(value) is value


def test_json_cleans_every_string_and_key_and_keeps_the_rest() -> None:
    """Strings at any depth, keys included, are cleaned; numbers, booleans and null stay."""
    value = {"k\x00": ["v\x00", {"n": 1, "f": 1.5, "b": True, "z": None, "s\ud800": "\x00"}]}
    assert storable_json(value) == {
        "k": ["v", {"n": 1, "f": 1.5, "b": True, "z": None, "s\ufffd": ""}]
    }
    assert storable_json("a\x00") == "a"
    assert storable_json(7) == 7


def test_json_does_not_change_its_input() -> None:
    """The input is left as it was; a new value is returned."""
    value = {"a": ["b\x00"]}
    storable_json(value)
    assert value == {"a": ["b\x00"]}


def test_json_handles_deep_nesting_without_recursion() -> None:
    """A value nested far beyond Python's recursion limit is cleaned, not a crash."""
    value: list[object] = ["\x00"]
    for _ in range(50_000):
        value = [value]
    cleaned = storable_json(value)
    for _ in range(50_000):
        cleaned = cleaned[0]
    assert cleaned == [""]


def test_header_text_replaces_controls_nuls_and_surrogates() -> None:
    """In a header every control character but tab, NUL included, and every lone surrogate
    becomes U+FFFD; what a header may hold is kept as it is."""
    assert storable_header_text("a\x00b\nc\x7fd\x01") == "a\ufffdb\ufffdc\ufffdd\ufffd"
    assert storable_header_text("x\udcff\ud800y") == "x\ufffd\ufffdy"
    assert storable_header_text("text/plain;\tq=1 caf\u00e9") == "text/plain;\tq=1 caf\u00e9"
    storable_header_text("\udcfe" * 10).encode("utf-8")  # always encodable


def test_header_text_cost_is_linear() -> None:
    """A mebibyte of hostile header text is cleaned quickly."""
    started = time.monotonic()
    cleaned = storable_header_text("a\x01\udcff\x00" * 262_144)
    assert time.monotonic() - started < 1.0
    assert len(cleaned) == 4 * 262_144


def test_cost_is_linear() -> None:
    """A mebibyte of mixed poison is cleaned quickly (linear time)."""
    text = "ab\x00\ud800" * 262_144
    started = time.monotonic()
    cleaned = storable_text(text)
    assert time.monotonic() - started < 1.0
    assert len(cleaned) == 3 * 262_144
