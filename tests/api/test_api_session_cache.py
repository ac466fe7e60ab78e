"""The session cache never outlives a change: after a logout, a deactivation, a password change,
a role change or a profile change made through this server, the very next request sees it, even
for a token whose session was just served from the cache; a change made by another process is
seen within ``TIDINGS_SESSION_CACHE_SECONDS`` (at once when it is 0)."""

import asyncio
import time

import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, Api, Factory, ServerThread, start_server
from tidings.config import Settings
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.store.database import Database

pytestmark = pytest.mark.db

EXPIRED = "api.context.session_expired.app_error"
NEW_PASSWORD = "Another-Secret-9!"


def _refused(api: Api) -> None:
    """The token is refused with the usual 401."""
    assert_app_error(api.request("GET", "/users/me"), 401, EXPIRED)


def _served(*apis: Api) -> None:
    """Each token is accepted (and so, now, in the cache)."""
    for api in apis:
        assert api.get("/users/me")["id"] == api.user["id"]


def test_logout_refuses_a_cached_token_at_once(server: ServerThread, factory: Factory) -> None:
    """A logged-out token is refused on the next request; the user's other session lives on."""
    user = factory.user()
    other = Api(server.url).login(user.user["username"])
    _served(user, other)
    user.post("/users/logout")
    _refused(user)
    _served(other)


def test_deactivation_refuses_cached_tokens_at_once(admin: Api, factory: Factory) -> None:
    """Deactivating refuses the user's cached tokens on the next request; after reactivation a
    new login works (the old sessions stay ended)."""
    user = factory.user()
    _served(user)
    admin.put(f"/users/{user.user['id']}/active", {"active": False})
    _refused(user)
    admin.put(f"/users/{user.user['id']}/active", {"active": True})
    _refused(user)
    _served(Api(admin.base_url).login(user.user["username"]))


def test_a_password_change_refuses_the_other_cached_tokens_at_once(
    server: ServerThread, factory: Factory
) -> None:
    """Changing one's own password refuses every other session on the next request and keeps
    the one that changed it; an admin's reset refuses them all."""
    user = factory.user()
    other = Api(server.url).login(user.user["username"])
    _served(user, other)
    user.put("/users/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    _refused(other)
    _served(user)

    reset = factory.user()
    second = Api(server.url).login(reset.user["username"])
    _served(reset, second)
    factory.admin.put(f"/users/{reset.user['id']}/password", {"new_password": NEW_PASSWORD})
    _refused(reset)
    _refused(second)


def test_a_role_change_applies_to_the_next_request(admin: Api, factory: Factory) -> None:
    """A promotion grants, and a demotion takes away, system-admin rights on the very next
    request of a session that was served from the cache."""
    user = factory.user()
    assert_app_error(user.request("GET", "/config"), 403)
    admin.put(f"/users/{user.user['id']}/roles", {"roles": "system_admin system_user"})
    assert user.get("/users/me")["roles"] == "system_admin system_user"
    user.get("/config")
    admin.put(f"/users/{user.user['id']}/roles", {"roles": "system_user"})
    assert_app_error(user.request("GET", "/config"), 403)
    assert user.get("/users/me")["roles"] == "system_user"


def test_a_profile_change_shows_in_every_session_at_once(
    server: ServerThread, admin: Api, factory: Factory
) -> None:
    """``/users/me`` answers from the session's user: a patch by the user or by an admin shows
    on the next request of every session of that user."""
    user = factory.user()
    other = Api(server.url).login(user.user["username"])
    _served(user, other)
    user.put("/users/me/patch", {"nickname": "first"})
    assert other.get("/users/me")["nickname"] == "first"
    admin.put(f"/users/{user.user['id']}/patch", {"nickname": "second"})
    assert user.get("/users/me")["nickname"] == "second"
    assert other.get("/users/me")["nickname"] == "second"


async def _deactivate_elsewhere(database_url: str, user_id: str) -> None:
    """Deactivate ``user_id`` as another process would (the ``tidings user`` CLI): its own
    runtime, so this server's cache hears nothing of it."""
    rt = Runtime(settings=Settings(database_url=database_url), db=Database.from_url(database_url))
    try:
        await user_service.set_active(rt, None, user_id, False)
    finally:
        await rt.db.dispose()


@pytest.mark.parametrize("ttl", [0.0, 1.0])
def test_another_processes_change_is_seen_within_the_cache_time(
    database_url: str, factory: Factory, ttl: float
) -> None:
    """A deactivation by another process refuses this server's cached token within
    ``session_cache_seconds`` of it (at once with 0, which turns the cache off)."""
    server = start_server(database_url, run_worker=False, session_cache_seconds=ttl)
    try:
        user = factory.user()
        api = Api(server.url, user.token, user.user)
        _served(api)
        asyncio.run(_deactivate_elsewhere(database_url, user.user["id"]))
        deadline = time.monotonic() + ttl + 2.0  # slack for a loaded machine
        while ttl and api.request("GET", "/users/me").status_code == 200:
            assert time.monotonic() < deadline, "a stale session outlived the cache time"
            time.sleep(0.05)
        _refused(api)
    finally:
        server.stop()
