"""Body decoders: each call returns at most the room it is given, so a bomb costs the cap."""

import gzip
import zlib

import brotli
import pytest

from tidings.webhooks.decoding import DECODERS, Identity, UndecodableBody, content_coding

CAP = 1_048_576
PLAIN = b'{"text":"' + b"A" * (64 * CAP) + b'"}'
PACKERS = {
    "br": brotli.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}


@pytest.mark.parametrize("coding", sorted(PACKERS))
@pytest.mark.parametrize("room", [1, 1000, 32_753, CAP + 1])
def test_a_bomb_never_yields_more_than_the_room(coding: str, room: int) -> None:
    """brotli's output limit is soft (asked for 1 byte it gives 32,752); the decoder's is not."""
    wire = PACKERS[coding](PLAIN)
    decoder = DECODERS[coding]()
    out = decoder.decode(wire, room)
    assert len(out) == room
    assert out == PLAIN[:room]


@pytest.mark.parametrize("coding", sorted(PACKERS))
def test_decoded_bytes_kept_stay_within_the_cap_as_the_client_reads(coding: str) -> None:
    """Fed in 64 KiB wire pieces with the room left under the cap, as the client does: the
    output kept never passes the cap plus the one byte that says "over"."""
    wire = PACKERS[coding](PLAIN)
    decoder = DECODERS[coding]()
    kept = 0
    for start in range(0, len(wire), 65_536):
        piece = decoder.decode(wire[start : start + 65_536], CAP + 1 - kept)
        kept += len(piece)
        assert kept <= CAP + 1
        if kept > CAP:
            break
    assert kept == CAP + 1


@pytest.mark.parametrize("coding", sorted(PACKERS))
def test_a_body_split_anywhere_decodes_whole(coding: str) -> None:
    """Wire pieces of any size (one byte at a time here) decode to the original."""
    plain = b'{"text": "' + b"hello " * 3000 + b'"}'
    wire = PACKERS[coding](plain)
    decoder = DECODERS[coding]()
    out = b"".join(decoder.decode(wire[i : i + 1], CAP) for i in range(len(wire)))
    assert (out, decoder.finish()) == (plain, "")


@pytest.mark.parametrize("coding", sorted(PACKERS))
def test_a_body_of_many_steps_in_one_piece_decodes_whole(coding: str) -> None:
    """Output far larger than one decoder step, from one wire piece, all comes out."""
    plain = b"".join(b"line %d\n" % i for i in range(100_000))
    decoder = DECODERS[coding]()
    out = decoder.decode(PACKERS[coding](plain), 4 * CAP)
    assert (out, decoder.finish()) == (plain, "")


def test_a_cut_off_body_is_reported_at_the_end() -> None:
    """A stream that stops early says so, instead of passing for a short reply."""
    decoder = DECODERS["br"]()
    decoder.decode(brotli.compress(b"x" * 10_000 + bytes(range(256)) * 40)[:-4], CAP)
    assert decoder.finish() == "ended before its compressed data did"


@pytest.mark.parametrize("coding", ["br", "gzip"])
def test_corrupt_data_is_an_undecodable_body(coding: str) -> None:
    """zlib's and brotli's own errors come out as one type the client turns into a reason."""
    wire = b"\xff\xff\xff\xff" if coding == "br" else b"\x1f\x8b\x08\x00garbage-not-deflate"
    with pytest.raises(UndecodableBody):
        DECODERS[coding]().decode(wire, CAP)


def test_identity_passes_bytes_through() -> None:
    assert Identity().decode(b"abc", 10) == b"abc"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((), None),
        (("identity",), None),
        (("GZIP",), "gzip"),
        (("br, identity",), "br"),
        (("gzip, br",), ""),
        (("gzip", "gzip"), ""),
    ],
)
def test_content_coding_names_one_coding_or_refuses_stacks(
    values: tuple[str, ...], expected: str | None
) -> None:
    assert content_coding(values) == expected
