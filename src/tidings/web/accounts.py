"""Signing in and out, signing up (first user or team invite), and Account Settings.

Must not import ``tidings.api`` or ``tidings.store``.
"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.errors import AppError
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.users import NewUser, Session
from tidings.web.navigation import home_path
from tidings.web.responses import PageRoute, local_path, page, redirect
from tidings.web.sessions import (
    anonymous_form,
    client_address,
    end_session,
    find_session,
    form_token,
    require_session,
    runtime,
    session_form,
    set_form_cookie,
    start_session,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "logged_out": "You have signed out.",
    "signup": "Your account is ready.",
}


async def _is_first_user(request: Request) -> bool:
    """True on a fresh server, where the sign-up page creates the system admin."""
    users = await user_service.list_users(runtime(request), 0, 5)
    return all(user.is_bot for user in users)


@router.get("/")
async def root(request: Request) -> Response:
    session = await find_session(request)
    if session is not None:
        return redirect(await home_path(runtime(request), session.user))
    if await _is_first_user(request):
        return redirect("/signup_user_complete")
    return redirect("/login")


async def _login_page(
    request: Request, *, error: str = "", login_id: str = "", status: int = 200
) -> Response:
    token = form_token(request)
    notice = NOTICES.get(request.query_params.get("extra", ""), "")
    response = await page(
        request,
        "login.html",
        session=None,
        status=status,
        form_csrf=token,
        error=error,
        notice=notice,
        login_id=login_id,
        redirect_to=local_path(request.query_params.get("redirect_to", ""), ""),
    )
    set_form_cookie(response, request, token)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    session = await find_session(request)
    if session is not None:
        default = await home_path(runtime(request), session.user)
        return redirect(local_path(request.query_params.get("redirect_to", ""), default))
    return await _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    rt = runtime(request)
    try:
        form = await anonymous_form(request)
        login_id = form.text("login_id").strip()
        user, token, csrf = await user_service.login(
            rt,
            login_id,
            form.text("password"),
            address=client_address(request),
        )
    except AppError as error:
        return await _login_page(request, error=error.message, status=error.status)
    target = local_path(form.text("redirect_to"), await home_path(rt, user))
    response = redirect(target)
    start_session(response, request, user.id, token, csrf)
    return response


async def _signup_page(
    request: Request, *, error: str = "", values: dict[str, str] | None = None, status: int = 200
) -> Response:
    token = form_token(request)
    invite_id = request.query_params.get("id", "")
    first = await _is_first_user(request)
    response = await page(
        request,
        "signup.html",
        session=None,
        status=status,
        form_csrf=token,
        error=error,
        invite_id=invite_id,
        first_user=first,
        values=values or {},
    )
    set_form_cookie(response, request, token)
    return response


@router.get("/signup_user_complete")
async def signup_form(request: Request) -> Response:
    return await _signup_page(request)


@router.post("/signup_user_complete")
async def signup(request: Request) -> Response:
    rt = runtime(request)
    values: dict[str, str] = {}
    try:
        form = await anonymous_form(request)
        values = {k: form.text(k).strip() for k in ("email", "username")}
        password = form.text("password")
        invite_id = form.text("invite_id").strip()
        new = NewUser(username=values["username"], email=values["email"], password=password)
        user = await user_service.create_user(rt, None, new, invite_id=invite_id)
        _, token, csrf = await user_service.login(
            rt,
            user.username,
            password,
            address=client_address(request),
        )
    except AppError as error:
        return await _signup_page(request, error=error.message, values=values, status=error.status)
    response = redirect(await home_path(rt, user))
    start_session(response, request, user.id, token, csrf)
    return response


@router.get("/logout")
async def logout_form(request: Request) -> Response:
    session = await find_session(request)
    if session is None:
        return redirect("/login")
    return await page(request, "logout.html", session=session)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await find_session(request)
    if session is not None:
        await session_form(request, session)
        await user_service.logout(runtime(request), session)
    response = redirect("/login?extra=logged_out")
    end_session(response)
    return response


async def _account_page(
    request: Request,
    session: Session,
    *,
    profile_error: str = "",
    password_error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    teams = await team_service.list_my_teams(runtime(request), session.user)
    return await page(
        request,
        "account.html",
        session=session,
        status=status,
        teams=teams,
        profile_error=profile_error,
        password_error=password_error,
        notice=notice,
    )


@router.get("/account_settings")
async def account_settings(request: Request) -> Response:
    session = await require_session(request)
    notice = {"profile": "Profile saved.", "password": "Password changed."}.get(
        request.query_params.get("saved", ""), ""
    )
    return await _account_page(request, session, notice=notice)


@router.post("/account_settings/profile")
async def save_profile(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    changes = {
        key: form.text(key).strip()
        for key in ("nickname", "first_name", "last_name", "position", "email")
    }
    try:
        await user_service.patch_user(runtime(request), session.user, session.user.id, changes)
    except AppError as error:
        return await _account_page(
            request, session, profile_error=error.message, status=error.status
        )
    return redirect("/account_settings?saved=profile")


@router.post("/account_settings/password")
async def save_password(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    new = form.text("new_password")
    if new != form.text("confirm_password"):
        mismatch = "The new passwords do not match."
        return await _account_page(request, session, password_error=mismatch, status=400)
    try:
        await user_service.change_password(
            runtime(request),
            session.user,
            session.user.id,
            form.text("current_password"),
            new,
            keep_session=session.token_hash,
        )
    except AppError as error:
        return await _account_page(
            request, session, password_error=error.message, status=error.status
        )
    return redirect("/account_settings?saved=password")
