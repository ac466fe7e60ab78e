"""Fixtures for the web client's tests: one Chromium per module, and webhook settings that let
replies use their override name and icon and reach receivers on 127.0.0.1."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from web_support import chromium

from support import Api


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium shared by a module's tests (each test opens its own context).

    Modules using it carry ``needs_chromium``, which skips them, saying why, without Chromium.
    """
    with chromium() as launched:
        yield launched


@pytest.fixture
def overrides_on(admin: Api) -> Iterator[Api]:
    """Outgoing webhooks on, loopback receivers allowed, username and icon overrides on."""
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "EnableOutgoingWebhooks": True,
                "AllowedUntrustedInternalConnections": "127.0.0.1",
                "EnablePostUsernameOverride": True,
                "EnablePostIconOverride": True,
            }
        },
    )
    yield admin
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "EnableOutgoingWebhooks": True,
                "AllowedUntrustedInternalConnections": "",
                "EnablePostUsernameOverride": False,
                "EnablePostIconOverride": False,
            }
        },
    )
