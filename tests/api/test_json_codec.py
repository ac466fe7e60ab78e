"""The API's JSON codec: orjson first, the standard library where orjson refuses, so that what
parsed or encoded before still does and errors read as before."""

import json

import pytest

from tidings.api.json_codec import JsonResponse, decode


def test_a_plain_body_decodes_as_the_standard_library_would() -> None:
    raw = '{"channel_id":"c","message":"héllo ✓","props":{"a":[1,2.5,true,null]}}'.encode()
    assert decode(raw) == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1e400}', "number out of range"),
        (b'{"a": ', "Expecting value"),
    ],
)
def test_what_orjson_refuses_is_refused_with_our_message(raw: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        decode(raw)


def test_a_lone_surrogate_reaches_the_checks_after_decoding() -> None:
    """orjson refuses it; the standard library decodes it, and ``api/common`` then refuses it
    by name (as before the codec)."""
    assert decode(b'"\\ud800"') == "\ud800"


def test_an_integer_past_64_bits_arrives_as_a_float_as_in_go() -> None:
    assert decode(b'{"n": 123456789012345678901234567890}') == {"n": 1.2345678901234568e29}


def test_answers_are_compact_utf8_as_starlette_wrote_them() -> None:
    content = {"id": "x", "message": "héllo ✓ \u2028", "n": [1, 2.5, None, True], "e": {}}
    starlette = json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()
    assert JsonResponse(content).body == starlette


@pytest.mark.parametrize("content", [{"big": 2**70}, {1: "not a string key"}])
def test_what_orjson_cannot_encode_the_standard_library_does(content: object) -> None:
    assert json.loads(JsonResponse(content).body) == json.loads(json.dumps(content))
