"""Typed application errors with stable Mattermost ids.

Every failure a client can see is an ``AppError``: a stable ``id`` (Mattermost's, where one exists),
an HTTP ``status``, an English ``message`` and a ``detailed_error`` for operators. The API maps them
to the Mattermost error JSON in exactly one place (``tidings.api.errors``); the CLI maps them to exit
codes. Services raise the subclasses so callers can tell classes of failure apart:

    AppError
    ├── BadRequest        400  malformed or invalid input
    ├── Unauthorized      401  no or expired session, bad credentials
    ├── Forbidden         403  authenticated but not allowed
    ├── NotFound          404  the thing does not exist (or is deleted)
    ├── Conflict          409  a unique name is taken
    ├── Gone              410  it existed but is used up or expired (a response_url)
    ├── PayloadTooLarge   413  body over MaximumPayloadSizeBytes
    ├── TooManyRequests   429  rate limited
    ├── InternalError     500  Mattermost answers 500 for a few validation cases; we keep the status
    └── FeatureDisabled   501  the admin switched the feature off

Must not import anything from the rest of the package.
"""


class AppError(Exception):
    """An error with a stable id, an HTTP status and a human message."""

    status = 500

    def __init__(
        self,
        id: str,
        message: str,
        detailed_error: str = "",
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{id}: {message}")
        self.id = id
        self.message = message
        self.detailed_error = detailed_error
        if status is not None:
            self.status = status


class BadRequest(AppError):
    """Malformed or invalid input."""

    status = 400


class Unauthorized(AppError):
    """No session, an expired one, or wrong credentials."""

    status = 401


class Forbidden(AppError):
    """The caller is known but lacks the permission."""

    status = 403


class NotFound(AppError):
    """The object does not exist or was deleted."""

    status = 404


class Conflict(AppError):
    """A unique value (username, team name, channel name) is taken."""

    status = 409


class Gone(AppError):
    """The object existed and can no longer be used (an expired or used-up response_url)."""

    status = 410


class PayloadTooLarge(AppError):
    """A request body over the configured maximum."""

    status = 413


class TooManyRequests(AppError):
    """Rate limited."""

    status = 429


class InternalError(AppError):
    """A server-side failure; also Mattermost's status for a few validation rules we keep."""

    status = 500


class FeatureDisabled(AppError):
    """The feature is switched off in the System Console."""

    status = 501


def permission_error(user_id: str, *permissions: str) -> Forbidden:
    """The one 403 Mattermost uses for every missing permission."""
    return Forbidden(
        "api.context.permissions.app_error",
        "You do not have the appropriate permissions.",
        f"userId={user_id}, permission={','.join(permissions)}",
    )


def invalid_param(name: str) -> BadRequest:
    """A bad query or body parameter."""
    return BadRequest(
        "api.context.invalid_param.app_error", f"Invalid {name} parameter.", f"name={name}"
    )


def invalid_url_param(name: str) -> BadRequest:
    """A malformed id in the URL path."""
    return BadRequest(
        "api.context.invalid_url_param.app_error",
        f"Invalid or missing {name} parameter in request URL.",
        f"name={name}",
    )


def invalid_body_param(name: str, detail: str = "") -> BadRequest:
    """A body that does not decode or lacks a required field."""
    return BadRequest(
        "api.context.invalid_body_param.app_error",
        f"Invalid or missing {name} in request body.",
        detail,
    )
