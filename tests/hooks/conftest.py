"""Fixtures of the end-to-end outgoing-webhook tests: shared users and a fresh team per test."""

from collections.abc import Iterator

import pytest
from hooks_support import NO_RETRIES, Cast, Scene, make_cast, make_scene, service_settings

from support import Api, Factory


@pytest.fixture(scope="module")
def cast(factory: Factory) -> Cast:
    return make_cast(factory)


@pytest.fixture
def scene(factory: Factory, cast: Cast, webhooks_on: Api) -> Scene:
    """Webhooks on (loopback allowed), and a new team and channel with a poster in it."""
    return make_scene(factory, cast)


@pytest.fixture
def no_retries(webhooks_on: Api) -> Iterator[None]:
    """A failed attempt is final at once: no retry muddles what a test counts, and the log
    holds failed deliveries to look at or recover. Modules opt in with ``usefixtures``."""
    with service_settings(webhooks_on, OutgoingWebhookRetryScheduleSeconds=NO_RETRIES):
        yield
