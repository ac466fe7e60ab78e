"""Ids: Mattermost's shape, uniform digits, and no repeats across threads or forks."""

import collections
import os
import string
import sys
import threading

import pytest

from tidings.ids import is_valid_id, new_id

ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"


def test_every_digit_of_the_alphabet_is_equally_likely() -> None:
    counts = collections.Counter("".join(new_id() for _ in range(20_000)))  # 520,000 digits
    assert set(counts) == set(ALPHABET)
    expected = 520_000 / 32
    # 5% is over six standard deviations; a fold by a number that does not divide 256 skews
    # some digits by 12% or more.
    assert all(abs(count - expected) < 0.05 * expected for count in counts.values())


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
