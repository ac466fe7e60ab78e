"""Values a receiver controls, made fit to store: no NUL, no lone surrogate, within the column.

PostgreSQL refuses a NUL byte in text and JSON, refuses strings longer than a ``VARCHAR``'s
length, and a Python string holding a lone surrogate cannot be encoded at all. A receiver can
put any of these in a reply's text, props or attachments, or in its response body and headers;
one such value used to make the write-back of a whole batch fail. Everything the worker stores
passes through these functions on its way to the database (``store/outbox.py``; response
headers in ``webhooks/client.py`` as they are read), so the whole class of poison values is
handled in one place. NULs are dropped, as Mattermost does; a lone
surrogate becomes U+FFFD, as Go's decoder makes it.

Linear in the size of the value, and cheap for clean ASCII (the usual case). Pure; no I/O.
"""

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _fix(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def storable_text(value: str, limit: int | None = None) -> str:
    """``value`` without NULs or lone surrogates, cut to ``limit`` code points if given."""
    if not (value.isascii() and "\x00" not in value):
        value = _UNSTORABLE.sub(_fix, value)
    return value if limit is None else value[:limit]


def storable_json(value: Any) -> Any:
    """A decoded JSON value with every string (keys too) made storable; others left as they are.

    Iterative, so a deeply nested value cannot exhaust the stack.
    """
    if isinstance(value, str):
        return storable_text(value)
    if not isinstance(value, dict | list):
        return value
    root: list[Any] = [None]
    work: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while work:
        source, parent, slot = work.pop()
        if isinstance(source, dict):
            target_dict: dict[str, Any] = {}
            parent[slot] = target_dict
            for key, item in source.items():
                clean_key = storable_text(key) if isinstance(key, str) else key
                target_dict[clean_key] = None
                work.append((item, target_dict, clean_key))
        elif isinstance(source, list):
            target_list: list[Any] = [None] * len(source)
            parent[slot] = target_list
            work.extend((item, target_list, i) for i, item in enumerate(source))
        elif isinstance(source, str):
            parent[slot] = storable_text(source)
        else:
            parent[slot] = source
    return root[0]


# In a header, any control character but tab is noise (or an attempt to garble the log view).
_UNSTORABLE_IN_HEADER = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def storable_header_text(value: str) -> str:
    """A response header's name or value fit to store and show: control characters (tab
    excepted), NULs and lone surrogates each become U+FFFD.

    Stricter than :func:`storable_text`, which keeps newlines because a message may hold them; a
    header line cannot. The client decodes header bytes keeping undecodable ones as lone
    surrogates (``surrogateescape``), which neither
    JSON nor PostgreSQL text can store. The webhook client applies this once, as it reads the
    headers; the outbox stores them as they come.
    """
    return _UNSTORABLE_IN_HEADER.sub("\ufffd", value)
