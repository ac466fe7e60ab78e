"""Fixtures for the API tests: Mattermost's contract, a team with a member, websocket URLs."""

from typing import Any

import pytest
from mattermost_contract import Contract

from support import Api, Factory, ServerThread


@pytest.fixture(scope="session")
def contract() -> Contract:
    """Mattermost's OpenAPI description, ready to validate responses."""
    return Contract()


# Module-scoped: making a user costs two argon2 hashes, so one team and one member serve a
# whole module. Tests that change an account (password, roles, activity) make their own.
@pytest.fixture(scope="module")
def team(factory: Factory) -> dict[str, Any]:
    """An open team owned by the admin."""
    return factory.team()


@pytest.fixture(scope="module")
def member(factory: Factory, team: dict[str, Any]) -> Api:
    """A plain user (system_user) who belongs to ``team``."""
    user = factory.user()
    factory.join(team, user)
    return user


@pytest.fixture
def ws_url(server: ServerThread) -> str:
    return f"ws://{server.settings.listen}/api/v4/websocket"
