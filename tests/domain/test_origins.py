"""Which browser origins count as the site's own (``origin_allowed``): pure, no server."""

import pytest

from tidings.domain.server_config import ConfigDocument, defaults, merge, origin_allowed


def _config(site_url: str = "", allow: str = "") -> ConfigDocument:
    return merge(defaults(), {"ServiceSettings": {"SiteURL": site_url, "AllowCorsFrom": allow}})


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://chat.example.test", "chat.example.test"),
        ("http://chat.example.test", "chat.example.test"),
        ("https://chat.example.test", "chat.example.test:443"),
        ("http://chat.example.test", "chat.example.test:80"),
        ("https://CHAT.example.test:443", "chat.example.test"),
        ("https://chat.example.test:8443", "chat.example.test:8443"),
        ("http://127.0.0.1:8065", "127.0.0.1:8065"),
        ("https://[::1]:8065", "[::1]:8065"),
    ],
)
def test_without_site_url_the_hosts_page_is_own_whatever_its_scheme(origin: str, host: str) -> None:
    """Without SiteURL, an http or https page of the request's Host is the site's own: behind
    a proxy that terminates TLS the request is http while the browser's page is https."""
    assert origin_allowed(_config(), origin, host)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://evil.example.test", "chat.example.test"),
        ("https://chat.example.test.evil.test", "chat.example.test"),
        ("https://chat.example.test:8443", "chat.example.test"),
        ("https://chat.example.test", "chat.example.test:8443"),
        ("http://chat.example.test", "chat.example.test:443"),
        ("ftp://chat.example.test", "chat.example.test"),
        ("null", "chat.example.test"),
        ("", "chat.example.test"),
        ("https://", ""),
        ("https://user@chat.example.test", "user@chat.example.test"),
        ("https://chat.example.test", ""),
    ],
)
def test_without_site_url_other_hosts_and_ports_are_refused(origin: str, host: str) -> None:
    """Another host, another port, a non-web scheme or a malformed origin is never own."""
    assert not origin_allowed(_config(), origin, host)


def test_with_site_url_it_alone_decides_exactly() -> None:
    """With SiteURL set, its scheme, host and port decide; the request's Host does not."""
    config = _config("https://chat.example.test/")
    assert origin_allowed(config, "https://chat.example.test", "anything.test")
    assert origin_allowed(config, "https://chat.example.test:443", "chat.example.test")
    assert not origin_allowed(config, "http://chat.example.test", "chat.example.test")
    assert not origin_allowed(config, "https://other.example.test", "other.example.test")
    assert not origin_allowed(config, "https://chat.example.test:8443", "chat.example.test")


def test_allow_cors_from_adds_origins_exactly() -> None:
    """AllowCorsFrom lists further origins (exact scheme and port), or ``*`` for any."""
    config = _config("https://chat.example.test", "https://one.test http://two.test:8080")
    assert origin_allowed(config, "https://one.test", "chat.example.test")
    assert origin_allowed(config, "http://two.test:8080", "chat.example.test")
    assert not origin_allowed(config, "http://one.test", "chat.example.test")
    assert not origin_allowed(config, "http://two.test", "two.test")
    assert origin_allowed(_config("", "*"), "https://anyone.test", "chat.example.test")
    assert not origin_allowed(_config("", "*"), "null", "chat.example.test")
