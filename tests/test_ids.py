"""Ids: Mattermost's shape, the spelling base32 gives, and no repeats across threads or forks."""

import base64
import os
import string
import sys
import threading

import pytest

from tidings.ids import is_valid_id, new_id, spell

_TO_MATTERMOST = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "ybndrfg8ejkmcpqxot1uwisza345h769"
)


def test_spelling_is_base32_in_mattermosts_alphabet() -> None:
    samples = [bytes(16), b"\xff" * 16, bytes(range(16))] + [os.urandom(16) for _ in range(2000)]
    for raw in samples:
        expected = base64.b32encode(raw).decode("ascii").rstrip("=").translate(_TO_MATTERMOST)
        assert spell(raw) == expected


def test_new_ids_are_valid_and_distinct() -> None:
    ids = [new_id() for _ in range(20_000)]  # several refills of the random pool
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(i) for i in ids)
    assert set("".join(ids)) <= set(string.ascii_lowercase + string.digits)


def test_threads_never_share_random_bytes() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for out in made for i in out]
    assert len(set(everything)) == len(everything) == 40_000


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    new_id()  # the pool now holds unused bytes the child inherits
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report a few ids and leave at once
        os.close(read_end)
        os.write(write_end, " ".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent_ids = {new_id() for _ in range(10)}
    assert len(child_ids) == 10
    assert not child_ids & parent_ids
