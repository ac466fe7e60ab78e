"""Fixtures of the end-to-end outgoing-webhook tests: shared users and a fresh team per test."""

import pytest
from hooks_support import Cast, Scene, make_cast, make_scene

from support import Api, Factory


@pytest.fixture(scope="module")
def cast(factory: Factory) -> Cast:
    return make_cast(factory)


@pytest.fixture
def scene(factory: Factory, cast: Cast, webhooks_on: Api) -> Scene:
    """Webhooks on (loopback allowed), and a new team and channel with a poster in it."""
    return make_scene(factory, cast)
