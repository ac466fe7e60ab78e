"""Sessions: login by username or email, the Token header, bearer and Token schemes, logout,
cookie auth with its CSRF token, the failed-login rate limit, and deactivated accounts."""

import httpx
import pytest
from mattermost_contract import assert_app_error

from support import PASSWORD, Api, Factory, ServerThread, free_port
from tidings.config import Settings

pytestmark = pytest.mark.db

BAD_LOGIN = "api.user.login.invalid_credentials_email_username"


def _login(anonymous: Api, login_id: str, password: str = PASSWORD) -> httpx.Response:
    return anonymous.request("POST", "/users/login", {"login_id": login_id, "password": password})


def test_login_by_username_answers_200_with_a_token_header(
    anonymous: Api, factory: Factory
) -> None:
    """Login by username is a 200 with the User JSON and the session token in ``Token``."""
    user = factory.user()
    response = _login(anonymous, user.user["username"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["id"] == user.user["id"]
    assert len(response.headers["Token"]) == 26
    assert not {"password", "password_hash"} & set(response.json())


def test_login_by_email_in_any_case(anonymous: Api, factory: Factory) -> None:
    """The login id may be the email address, in any letter case, with stray spaces."""
    user = factory.user()
    email = user.user["email"]
    for login_id in (email, email.upper(), f"  {email} "):
        response = _login(anonymous, login_id)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.user["id"]


def test_wrong_credentials_are_one_401(anonymous: Api, factory: Factory) -> None:
    """A wrong password and an unknown account answer the same 401, revealing nothing."""
    user = factory.user()
    wrong_password = _login(anonymous, user.user["username"], "not-the-password")
    unknown = _login(anonymous, "nobody-by-that-name", PASSWORD)
    for response in (wrong_password, unknown):
        assert_app_error(response, 401, BAD_LOGIN)
        assert "Token" not in response.headers
    assert wrong_password.json()["message"] == unknown.json()["message"]


def test_bearer_and_token_schemes_both_authenticate(server: ServerThread, factory: Factory) -> None:
    """``Authorization: Bearer <t>`` and ``Authorization: Token <t>`` (any case) both work."""
    user = factory.user()
    for header in (f"Bearer {user.token}", f"Token {user.token}", f"bearer {user.token}"):
        response = httpx.get(f"{server.url}/api/v4/users/me", headers={"Authorization": header})
        assert response.status_code == 200, header
        assert response.json()["id"] == user.user["id"]


def test_logout_ends_the_session(factory: Factory) -> None:
    """After logout the token is a 401; another session of the same user lives on."""
    user = factory.user()
    other = user.login(user.user["username"])
    assert user.post("/users/logout", expect=200) == {"status": "OK"}
    assert_app_error(user.request("GET", "/users/me"), 401, "api.context.session_expired.app_error")
    assert other.get("/users/me")["id"] == user.user["id"]
    assert_app_error(user.request("POST", "/users/logout"), 401)


def test_cookie_sessions_need_the_csrf_token_on_changes(
    server: ServerThread, factory: Factory
) -> None:
    """Cookie auth works for reads; a change also needs ``X-CSRF-Token`` equal to ``MMCSRF``."""
    user = factory.user()
    team = factory.team()
    factory.join(team, user)
    channel = factory.channel(team)
    factory.admin.post(f"/channels/{channel['id']}/members", {"user_id": user.user["id"]})
    with httpx.Client(base_url=f"{server.url}/api/v4") as browser:
        login = browser.post(
            "/users/login", json={"login_id": user.user["username"], "password": PASSWORD}
        )
        assert login.status_code == 200
        cookies = {c.name: c for c in browser.cookies.jar}
        assert set(cookies) >= {"MMAUTHTOKEN", "MMCSRF", "MMUSERID"}
        assert cookies["MMAUTHTOKEN"].has_nonstandard_attr("HttpOnly")
        assert not cookies["MMCSRF"].has_nonstandard_attr("HttpOnly")
        assert cookies["MMUSERID"].value == user.user["id"]
        assert browser.get("/users/me").json()["id"] == user.user["id"]

        post = {"channel_id": channel["id"], "message": "from a browser"}
        assert_app_error(browser.post("/posts", json=post), 401)
        assert_app_error(browser.post("/posts", json=post, headers={"X-CSRF-Token": "wrong"}), 401)
        csrf = browser.cookies["MMCSRF"]
        created = browser.post("/posts", json=post, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201, created.text

        logout = browser.post("/users/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 200
        assert "MMAUTHTOKEN" not in browser.cookies
    stale = httpx.get(
        f"{server.url}/api/v4/users/me", cookies={"MMAUTHTOKEN": cookies["MMAUTHTOKEN"].value}
    )
    assert_app_error(stale, 401)


def test_a_header_token_needs_no_csrf(server: ServerThread, factory: Factory) -> None:
    """API clients with a bearer token never need a CSRF token, even with a stale cookie."""
    user = factory.user()
    response = httpx.put(
        f"{server.url}/api/v4/users/me/patch",
        json={"nickname": "api"},
        headers={"Authorization": f"Bearer {user.token}"},
        cookies={"MMAUTHTOKEN": "stale"},
    )
    assert response.status_code == 200
    assert response.json()["nickname"] == "api"


def test_failed_logins_are_rate_limited_per_account(database_url: str, factory: Factory) -> None:
    """Repeated failures get the account 429 by username or email; others and sessions don't."""
    settings = Settings(
        database_url=database_url,
        listen=f"127.0.0.1:{free_port()}",
        run_worker=False,
        login_failures_per_minute=3,
    )
    server = ServerThread(settings).start()
    try:
        anonymous = Api(server.url)
        victim, bystander = factory.user(), factory.user()
        for _ in range(3):
            assert_app_error(_login(anonymous, victim.user["username"], "wrong-password"), 401)
        limited = _login(anonymous, victim.user["username"])
        assert_app_error(limited, 429, "api.user.login.rate_limited.app_error")
        assert "Token" not in limited.headers
        assert_app_error(_login(anonymous, victim.user["email"].upper()), 429)
        assert _login(anonymous, bystander.user["username"]).status_code == 200
        assert Api(server.url, victim.token).get("/users/me")["id"] == victim.user["id"]
    finally:
        server.stop()


def test_failures_from_one_address_do_not_lock_out_another(
    database_url: str, factory: Factory
) -> None:
    """An attacker at 127.0.0.2 failing for an account gets 429s; its owner at 127.0.0.1 still
    logs in (real source addresses on the loopback, no forwarded headers trusted)."""
    settings = Settings(
        database_url=database_url,
        listen=f"127.0.0.1:{free_port()}",
        run_worker=False,
        login_failures_per_minute=3,
    )
    server = ServerThread(settings).start()
    try:
        victim = factory.user()
        body = {"login_id": victim.user["username"], "password": "wrong-password"}
        url = f"{server.url}/api/v4/users/login"
        attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with attacker:
            for _ in range(3):
                assert_app_error(attacker.post(url, json=body), 401)
            body["password"] = PASSWORD
            assert_app_error(attacker.post(url, json=body), 429)
            spoofed = attacker.post(url, json=body, headers={"X-Forwarded-For": "127.0.0.1"})
            assert_app_error(spoofed, 429)
        assert _login(Api(server.url), victim.user["username"]).status_code == 200
    finally:
        server.stop()


def test_deactivated_users_cannot_log_in(admin: Api, anonymous: Api, factory: Factory) -> None:
    """Deactivating a user ends their sessions and refuses logins; reactivating restores them."""
    user = factory.user()
    assert admin.put(f"/users/{user.user['id']}/active", {"active": False}) == {"status": "OK"}
    assert_app_error(user.request("GET", "/users/me"), 401)
    assert_app_error(_login(anonymous, user.user["username"]), 401)
    assert admin.get(f"/users/{user.user['id']}")["delete_at"] > 0
    admin.put(f"/users/{user.user['id']}/active", {"active": True})
    assert _login(anonymous, user.user["username"]).status_code == 200


def test_members_cannot_deactivate_or_promote(admin: Api, factory: Factory) -> None:
    """Only system admins change roles and activity; a member trying is a 403."""
    user, other = factory.user(), factory.user()
    for path, body in (
        (f"/users/{other.user['id']}/active", {"active": False}),
        (f"/users/{user.user['id']}/roles", {"roles": "system_admin system_user"}),
    ):
        assert_app_error(user.request("PUT", path, body), 403, "api.context.permissions.app_error")
    assert other.get("/users/me")["delete_at"] == 0
    assert user.get("/users/me")["roles"] == "system_user"


def test_a_password_change_needs_the_current_password(anonymous: Api, factory: Factory) -> None:
    """Users change their own password with the current one; the old one stops working."""
    user = factory.user()
    wrong = user.request(
        "PUT", "/users/me/password", {"current_password": "nope", "new_password": "brand-new-1"}
    )
    assert_app_error(wrong, 400, "api.user.update_password.incorrect.app_error")
    user.put("/users/me/password", {"current_password": PASSWORD, "new_password": "brand-new-1"})
    assert_app_error(_login(anonymous, user.user["username"]), 401)
    assert _login(anonymous, user.user["username"], "brand-new-1").status_code == 200


def test_sign_up_is_closed_after_the_first_user(anonymous: Api) -> None:
    """Without open sign-up, an anonymous account creation is a 403."""
    response = anonymous.request(
        "POST",
        "/users",
        {"username": "walkin", "email": "walkin@example.test", "password": PASSWORD},
    )
    assert_app_error(response, 403, "api.user.create_user.no_open_server")
