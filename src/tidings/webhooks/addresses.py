"""Which addresses a webhook may connect to: the ``AllowedUntrustedInternalConnections`` rules.

Callback URLs are written by users, so without a guard any user who may create a hook could make the
server POST into its own network (metadata services, admin panels, databases speaking HTTP). The
rules follow Mattermost's dialer filter (REF §3.5):

1. The setting is split into entries on whitespace and commas. If the URL's host string equals an
   entry, the connection is made with no address checks (``AllowList.host_allowed``).
2. Otherwise every resolved IP is judged on its own: allowed when it is neither reserved nor one of
   this server's interface addresses, or when it falls inside a CIDR entry
   (``AllowList.ip_allowed``).

This module only states the rules. Applying them to the address a socket is about to connect to,
and listing the server's own addresses, is ``tidings.webhooks.client``'s job.

Pure and standard library only: no I/O, no imports from the rest of the package.
"""

import functools
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TypeAlias

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

# Go's strings.Fields splits on the Unicode White_Space property. Python's str.split() uses a
# different set (it also splits on U+001C..U+001F), so the set is spelled out; commas are
# separators too.
_SEPARATORS = re.compile("[,\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")

# Mattermost's list (HTTPSVC/client.go), kept in its order so the two can be compared by eye,
# then the ranges added after checking it against IANA's IPv4 and IPv6 special-purpose address
# registries (ranges that are not globally reachable). Addresses that embed an IPv4 address are
# covered so: IPv4-mapped ``::ffff:0:0/96`` is judged as its IPv4 address (``plain_ip``); the
# IPv4-compatible ``::/96``, SIIT ``::ffff:0:0:0/96``, NAT64 ``64:ff9b::/96`` and
# ``64:ff9b:1::/48``, 6to4 ``2002::/16`` and Teredo ``2001::/32`` are refused whole, whatever
# IPv4 address they carry. The globally reachable special-purpose ranges (AS112, AMT, direct
# delegation, PCP/TURN anycast) are left alone, as Mattermost leaves them.
RESERVED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ip_network(cidr)
    for cidr in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "100.64.0.0/10",
        "::/128",
        "::1/128",
        "100::/64",
        "2001::/23",
        "2001:2::/48",
        "2001:db8::/32",
        "2001::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "2002::/16",
        "64:ff9b::/96",
        "2001:10::/28",
        "2001:20::/28",
        # Added beyond Mattermost's list:
        "::/96",  # IPv4-compatible (deprecated, RFC 4291): [::7f00:1] may reach 127.0.0.1
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
        "fec0::/10",  # site-local (deprecated, RFC 3879), still routed inside some networks
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
        "100:0:0:1::/64",  # dummy prefix (RFC 9780)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
    )
)


def plain_ip(ip: IPAddress) -> IPAddress:
    """The address as the rules judge it: IPv4-mapped IPv6 becomes IPv4, an IPv6 zone is dropped.

    ``::ffff:127.0.0.1`` reaches 127.0.0.1, so it must be judged as 127.0.0.1; and
    ``fe80::1%eth0`` must compare equal to the ``fe80::1`` an interface listing reports.
    """
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id is not None:
            return IPv6Address(int(ip))
    return ip


def parse_ip(text: str) -> IPAddress | None:
    """An IP literal (IPv6 with or without a zone) as a plain address, or None if it is not one."""
    try:
        return plain_ip(ip_address(text))
    except ValueError:
        return None


def is_reserved_ip(ip: IPAddress) -> bool:
    """Whether the address is private, loopback, link-local, documentation, multicast or similar."""
    ip = plain_ip(ip)
    return any(ip in network for network in RESERVED_NETWORKS)


@dataclass(frozen=True, slots=True)
class IpVerdict:
    """Whether an IP may be connected to, and if not, a reason fit for the delivery log."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AllowList:
    """The parsed ``AllowedUntrustedInternalConnections`` setting.

    ``entries`` keeps the setting's words as written; ``networks`` holds the entries that parse as
    CIDR (only those count for IP checks, as in Mattermost). Two lists with the same entries are
    equal, which lets the client tell a real change from a re-saved setting.
    """

    entries: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    def host_allowed(self, host: str) -> bool:
        """Whether the URL's host string is itself an entry, which skips every IP check.

        Names compare case-insensitively (the URL parser lower-cases them anyway), and IP literals
        compare as addresses so that ``::ffff:127.0.0.1`` and its normalised spelling
        ``::ffff:7f00:1`` are the same entry. A plain IP entry never admits a *name* resolving to
        that IP; that takes a CIDR entry such as ``a.b.c.d/32``.
        """
        return bool(self.entries) and _host_is_entry(self.entries, host)

    def ip_allowed(self, ip: IPAddress, own_ips: frozenset[IPAddress] | None) -> IpVerdict:
        """Judge one resolved address.

        ``own_ips`` is the server's interface addresses, or None when they could not be listed; then
        every address counts as the server's own (fail closed), so only CIDR entries admit it.
        """
        ip = plain_ip(ip)
        if any(ip in network for network in self.networks):
            return IpVerdict(allowed=True)
        if is_reserved_ip(ip):
            return IpVerdict(allowed=False, reason=f"{ip} is in a reserved range")
        if own_ips is None:
            return IpVerdict(
                allowed=False, reason=f"{ip} refused: this server's addresses could not be listed"
            )
        if ip in own_ips:
            return IpVerdict(allowed=False, reason=f"{ip} is one of this server's addresses")
        return IpVerdict(allowed=True)


def parse_allowlist(value: str) -> AllowList:
    """Split the setting on whitespace and commas, dropping empty entries."""
    entries = tuple(entry for entry in _SEPARATORS.split(value) if entry)
    return AllowList(
        entries=entries,
        networks=tuple(network for entry in entries if (network := _cidr(entry)) is not None),
    )


def _cidr(entry: str) -> IPNetwork | None:
    """The network of a CIDR entry; host bits are masked off, as Go's ParseCIDR does.

    Only entries with a prefix length count: Python would read a bare ``10.0.0.1`` as a /32, but in
    Mattermost that entry is a host-string match only.
    """
    if "/" not in entry:
        return None
    try:
        return ip_network(entry, strict=False)
    except ValueError:
        return None


def _exact_ip(text: str) -> IPAddress | None:
    """An IP literal as written (mapped and zoned forms kept distinct), or None for a name."""
    try:
        return ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _host_is_entry(entries: tuple[str, ...], host: str) -> bool:
    """:meth:`AllowList.host_allowed`, remembered: the worker asks for every request, and
    parsing IP literals costs more than the rest of the check."""
    host_ip = _exact_ip(host)
    for entry in entries:
        if host_ip is not None:
            if _exact_ip(entry) == host_ip:
                return True
        elif entry.lower() == host.lower():
            return True
    return False
