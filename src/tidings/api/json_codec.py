"""JSON on the wire: bodies decoded and answers encoded with orjson, the standard library's
``json`` where orjson refuses.

Every request and answer of the API passes through here, and on the post path the standard
library's encoder and decoder were a tenth of the server's CPU per post (py-spy, 16 posting
clients): Starlette's ``JSONResponse`` builds a new encoder for every answer, and a decoder
with hooks is built for every body. orjson does both in C.

orjson is stricter than the standard library, and where it refuses, the standard library
decides, so nothing that parsed or encoded before is refused now and every error reads as it
did: a body orjson cannot parse (``NaN``, a number too large for a double, a lone surrogate, a
byte-order mark) goes to ``json.loads``, whose hooks refuse the non-finite numbers with our own
message; an answer orjson cannot encode (an integer past 64 bits, a key that is not a string)
goes to ``json.dumps``. Two things differ from the standard library, both as Mattermost's Go
decoder does it: an integer past 64 bits in a body arrives as a float, and (never in our answers,
since no body may carry one) a NaN would be encoded as ``null``.
"""

import json
import math
from typing import Any

import orjson
from starlette.responses import JSONResponse


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def decode(raw: bytes) -> Any:
    """Strict JSON: raises ``ValueError`` (``RecursionError`` for absurd nesting in the
    standard library's parser) with a message fit for a 400."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw, parse_constant=_no_constants, parse_float=_finite)


def encode(content: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's ``JSONResponse`` writes it."""
    try:
        return orjson.dumps(content)
    except TypeError:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")


class JsonResponse(JSONResponse):
    """Starlette's JSON answer, encoded by :func:`encode`."""

    def render(self, content: Any) -> bytes:
        return encode(content)
