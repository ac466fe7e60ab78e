"""The AllowedUntrustedInternalConnections rules, as pure functions (REF §3.5, §8.7)."""

from ipaddress import ip_address, ip_network

import pytest

from tidings.webhooks.addresses import (
    AllowList,
    is_reserved_ip,
    parse_allowlist,
    parse_ip,
    plain_ip,
)


@pytest.mark.parametrize(
    ("ip", "reserved"),
    [
        ("127.8.3.5", True),
        ("192.168.0.1", True),
        ("169.254.0.6", True),
        ("127.120.6.3", True),
        ("8.8.8.8", False),
        ("9.9.9.8", False),
        ("::ffff:127.0.0.1", True),
        ("::ffff:192.168.1.1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("::ffff:8.8.8.8", False),
        ("::1", True),
        ("fe80::1", True),
        ("2607:f8b0:4004:800::200e", False),
    ],
)
def test_is_reserved_ip_matches_mattermost_table(ip: str, reserved: bool) -> None:
    """IsReservedIP's own test table gives the same answers."""
    assert is_reserved_ip(ip_address(ip)) is reserved


@pytest.mark.parametrize(
    "ip",
    ["100.64.0.1", "198.18.0.1", "224.0.0.1", "255.255.255.255", "0.0.0.0", "fc00::1", "ff02::1"],
)
def test_is_reserved_ip_covers_the_rest_of_the_list(ip: str) -> None:
    """Shared, benchmarking, multicast, broadcast and unique-local ranges are reserved too."""
    assert is_reserved_ip(ip_address(ip))


@pytest.mark.parametrize(
    ("value", "entries"),
    [
        ("", ()),
        ("127.0.0.1 localhost", ("127.0.0.1", "localhost")),
        ("127.0.0.1,localhost", ("127.0.0.1", "localhost")),
        ("127.0.0.1,,localhost", ("127.0.0.1", "localhost")),
        ("127.0.0.1  localhost", ("127.0.0.1", "localhost")),
        ("127.0.0.1 , localhost", ("127.0.0.1", "localhost")),
        ("127.0.0.1  localhost  ", ("127.0.0.1", "localhost")),
        (" 127.0.0.1  ,,localhost  , , ,,", ("127.0.0.1", "localhost")),
        ("127.0.0.1 localhost, 192.168.1.0", ("127.0.0.1", "localhost", "192.168.1.0")),
    ],
)
def test_parse_allowlist_splits_like_mattermost(value: str, entries: tuple[str, ...]) -> None:
    """Whitespace and commas separate entries and empty entries are dropped."""
    assert parse_allowlist(value).entries == entries


def test_parse_allowlist_splits_on_unicode_white_space_only() -> None:
    """Tabs, newlines and no-break spaces separate; U+001F (not White_Space in Go) does not."""
    assert parse_allowlist("a\tb\nc\u00a0d\u3000e").entries == ("a", "b", "c", "d", "e")
    assert parse_allowlist("a\x1fb").entries == ("a\x1fb",)


def test_parse_allowlist_keeps_only_prefixed_entries_as_networks() -> None:
    """A bare IP is a host entry; CIDR entries become networks with host bits masked off."""
    allowlist = parse_allowlist("10.0.0.1 10.1.2.3/8 fd00::/8 nonsense/12 localhost")
    assert allowlist.networks == (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


def test_equal_settings_give_equal_allowlists() -> None:
    """Re-saving the same words (with other spacing) is not a change."""
    assert parse_allowlist("a, b") == parse_allowlist(" a   b ")
    assert parse_allowlist("a, b") != parse_allowlist("a")


@pytest.mark.parametrize(
    ("value", "host", "allowed"),
    [
        ("10.0.0.1", "10.0.0.1", True),
        ("127.0.0.1", "localhost", False),
        ("localhost", "localhost", True),
        ("LocalHost", "localhost", True),
        ("localhost", "localhost.", False),
        ("127.0.0.0/8", "127.0.0.1", False),
        ("::1", "::1", True),
        ("::ffff:127.0.0.1", "::ffff:7f00:1", True),
        ("", "localhost", False),
        ("example.com", "sub.example.com", False),
    ],
)
def test_host_allowed_needs_an_entry_equal_to_the_host(
    value: str, host: str, allowed: bool
) -> None:
    """Only an entry naming the URL's host skips the IP checks; CIDR entries never match hosts."""
    assert parse_allowlist(value).host_allowed(host) is allowed


def test_public_ip_is_allowed_without_entries() -> None:
    """An address that is neither reserved nor the server's own needs no entry."""
    assert AllowList().ip_allowed(ip_address("8.8.8.8"), frozenset()).allowed


def test_reserved_ip_is_refused_with_a_reason() -> None:
    """A loopback address is refused and the reason names it."""
    verdict = parse_allowlist("127.0.0.1").ip_allowed(ip_address("127.0.0.1"), frozenset())
    assert not verdict.allowed
    assert "127.0.0.1" in verdict.reason


def test_reserved_ip_inside_a_cidr_entry_is_allowed() -> None:
    """A CIDR entry admits reserved addresses it contains, and only those."""
    allowlist = parse_allowlist("127.0.0.0/8, 10.0.0.1/32")
    assert allowlist.ip_allowed(ip_address("127.4.5.6"), frozenset()).allowed
    assert allowlist.ip_allowed(ip_address("10.0.0.1"), frozenset()).allowed
    assert not allowlist.ip_allowed(ip_address("10.0.0.2"), frozenset()).allowed


def test_mapped_ipv6_is_judged_by_its_ipv4_part() -> None:
    """::ffff:127.0.0.1 is refused like 127.0.0.1 and admitted by an IPv4 CIDR entry."""
    mapped = ip_address("::ffff:127.0.0.1")
    assert not AllowList().ip_allowed(mapped, frozenset()).allowed
    assert parse_allowlist("127.0.0.0/8").ip_allowed(mapped, frozenset()).allowed


def test_own_ip_is_refused_unless_in_a_cidr_entry() -> None:
    """A public address of this server's own interfaces is refused; a CIDR entry admits it."""
    own = frozenset({ip_address("8.0.0.8")})
    verdict = AllowList().ip_allowed(ip_address("8.0.0.8"), own)
    assert not verdict.allowed
    assert "this server" in verdict.reason
    assert parse_allowlist("8.0.0.0/8").ip_allowed(ip_address("8.0.0.8"), own).allowed


def test_unknown_own_ips_fail_closed() -> None:
    """When the interfaces cannot be listed every address counts as the server's own."""
    assert not AllowList().ip_allowed(ip_address("8.8.8.8"), None).allowed
    assert parse_allowlist("8.8.8.0/24").ip_allowed(ip_address("8.8.8.8"), None).allowed


def test_parse_ip_drops_zone_and_mapping() -> None:
    """Zoned and mapped literals become the plain address; names give None."""
    assert parse_ip("fe80::1%eth0") == ip_address("fe80::1")
    assert parse_ip("::ffff:10.0.0.1") == ip_address("10.0.0.1")
    assert parse_ip("localhost") is None
    assert plain_ip(ip_address("8.8.8.8")) == ip_address("8.8.8.8")


@pytest.mark.parametrize(
    "ip",
    [
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "::8.8.8.8",  # IPv4-compatible, even of a public address
        "::ffff:0:7f00:1",  # SIIT 127.0.0.1
        "fec0::1",
        "feff:ffff::1",  # last of fec0::/10
        "64:ff9b:1::a00:1",  # local-use NAT64
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::808:808",  # NAT64 of a public address: the whole /96 is refused
        "2002:7f00:1::1",  # 6to4 embedding 127.0.0.1
        "2002:808:808::1",  # 6to4 embedding a public address
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "100::1",  # discard-only
        "100:0:0:1::1",  # dummy prefix
        "2001:2::1",  # benchmarking
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (new)
        "5f00::1",  # SRv6 SIDs
        "fd00::1",  # unique-local
        "ff05::2",  # multicast
        "192.0.0.8",  # IETF protocol assignments
        "192.88.99.1",  # 6to4 relay anycast
        "198.51.100.7",
        "203.0.113.9",
        "240.0.0.1",
    ],
)
def test_special_purpose_ranges_are_refused(ip: str) -> None:
    """Every not-globally-reachable range of IANA's registries, and every IPv4 embedding."""
    assert is_reserved_ip(ip_address(ip))
    assert not parse_allowlist("").ip_allowed(ip_address(ip), frozenset()).allowed


@pytest.mark.parametrize(
    "ip",
    [
        "::ffff:8.8.8.8",  # mapped public: judged as 8.8.8.8
        "64:ff9c::1",  # just past NAT64's /96 and /48
        "64:ff9b:2::1",
        "fe7f:ffff::1",  # just below fe80::/10
        "2003::1",  # just past 6to4
        "2001:200::1",  # past 2001::/23
        "2620:4f:8000::1",  # AS112 direct delegation: globally reachable
        "192.31.196.1",  # AS112-v4: globally reachable
        "1.1.1.1",
    ],
)
def test_globally_reachable_neighbours_are_allowed(ip: str) -> None:
    assert not is_reserved_ip(ip_address(ip))


@pytest.mark.parametrize(
    ("ip", "entry"),
    [
        ("::7f00:1", "::/96"),
        ("fec0::1", "fec0::/10"),
        ("64:ff9b:1::a00:1", "64:ff9b:1::/48"),
    ],
)
def test_new_ranges_can_be_allow_listed_by_cidr(ip: str, entry: str) -> None:
    allowlist = parse_allowlist(entry)
    assert allowlist.ip_allowed(ip_address(ip), frozenset()).allowed
    assert not parse_allowlist("127.0.0.0/8").ip_allowed(ip_address(ip), frozenset()).allowed
