"""The run-time configuration an admin edits in the System Console (``/api/v4/config``).

Mattermost's JSON shape: sections in PascalCase holding settings in PascalCase. Stored in the
database as one document; defaults fill anything missing, so an upgrade that adds a setting needs
no migration. Pure; no I/O.
"""

import copy
from dataclasses import dataclass
from typing import Any

from tidings.errors import BadRequest

ConfigDocument = dict[str, dict[str, Any]]

DEFAULTS: ConfigDocument = {
    "ServiceSettings": {
        "SiteURL": "",
        # Space-separated origins (scheme://host[:port]) besides the site's own that may open a
        # cookie-authenticated websocket; "*" allows any.
        "AllowCorsFrom": "",
        "EnableOutgoingWebhooks": True,
        "EnablePostUsernameOverride": False,
        "EnablePostIconOverride": False,
        "OutgoingIntegrationRequestsTimeout": 30,
        "AllowedUntrustedInternalConnections": "",
        "MaximumPayloadSizeBytes": 300_000,
        "EnableDeveloper": False,
        # Tidings: members (not only team and system admins) may manage their own hooks.
        "EnableMemberOutgoingWebhooks": False,
        # Tidings delivery engine knobs, beside Mattermost's.
        "OutgoingWebhookRetryScheduleSeconds": [5, 30, 120, 600, 1800],
        "OutgoingWebhookMaxConcurrencyPerDestination": 8,
        # 0: automatic, a quarter (owner) or half (team) of the worker's senders.
        "OutgoingWebhookMaxConcurrencyPerOwner": 0,
        "OutgoingWebhookMaxConcurrencyPerTeam": 0,
        "OutgoingWebhookDeliveryRetentionDays": 30,
        "OutgoingWebhookAutoDisableHours": 24,
        "OutgoingWebhookAutoDisableMinFailures": 10,
        # Beyond Mattermost (docs/integrations.md): hooks watching private channels their creator
        # belongs to; how long a delivery's response_url takes replies; how many webhook replies
        # deep a chain of bots may go before hooks stop firing for the replies.
        "EnableOutgoingWebhooksInPrivateChannels": False,
        "OutgoingWebhookResponseUrlMinutes": 30,
        "OutgoingWebhookMaxChainDepth": 3,
    },
    "TeamSettings": {
        "SiteName": "Tidings",
        # Mattermost's defaults: anyone may create a team (off: only system admins, i.e. the
        # create_team permission); sign-up needs an invitation unless the server is open.
        "EnableTeamCreation": True,
        "EnableOpenServer": False,
        "MaxUsersPerTeam": 1000,
    },
    # Mattermost's section and rules, stricter defaults: Mattermost's (8 characters, no class
    # required) accept "12345678". Ten characters with a lower-case letter and a digit refuse
    # the all-digit and all-letter passwords that top every leaked-password list, while a
    # pass phrase ("correct-horse-9") still passes without upper case or symbols.
    "PasswordSettings": {
        "MinimumLength": 10,
        "Lowercase": True,
        "Number": True,
        "Uppercase": False,
        "Symbol": False,
    },
}


# Mattermost's bound on MinimumLength is 5–72; Tidings will not go below 8 (NIST SP 800-63B's floor).
PASSWORD_LENGTH_FLOOR, PASSWORD_LENGTH_CEILING = 8, 72

# Mattermost's settings are Go int64s; numbers in lists are seconds, finite and below a century.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_LIST_NUMBER = 100 * 365 * 24 * 3600
# A response_url lives at most a day; a chain of bots at most 10 replies deep (0: no reply post
# ever fires a hook, even an opted-in one).
MAX_RESPONSE_URL_MINUTES = 24 * 60
MAX_CHAIN_DEPTH = 10


@dataclass(frozen=True, slots=True)
class PasswordRules:
    """``PasswordSettings``, typed: what a new password must contain."""

    minimum_length: int
    lowercase: bool
    uppercase: bool
    number: bool
    symbol: bool


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """The slice of the configuration the webhook engine reads, typed."""

    enabled: bool
    username_override: bool
    icon_override: bool
    timeout_seconds: int
    allowlist: str
    retry_schedule_seconds: tuple[float, ...]
    per_destination_cap: int
    per_owner_cap: int  # 0: automatic (see ``webhooks/slots.py``)
    per_team_cap: int
    retention_days: int
    auto_disable_hours: int
    auto_disable_min_failures: int
    private_channels: bool
    response_url_minutes: int
    max_chain_depth: int
    site_url: str  # where response_urls point ("" : the server's own address)


def defaults() -> ConfigDocument:
    """A fresh copy of the defaults."""
    return copy.deepcopy(DEFAULTS)


def merge(base: ConfigDocument, patch: object) -> ConfigDocument:
    """Apply a partial document onto ``base`` and validate the result.

    Unknown sections and keys are ignored, as Mattermost ignores fields it does not know, and
    so is ``null``: Mattermost's settings are Go pointers, which ``null`` leaves unset.
    """
    if not isinstance(patch, dict):
        raise BadRequest(
            "api.config.patch_config.app_error", "The config patch must be a JSON object."
        )
    result = copy.deepcopy(base)
    for section, values in patch.items():
        if section not in DEFAULTS or values is None:
            continue
        if not isinstance(values, dict):
            raise _invalid(section, "must be an object")
        for key, value in values.items():
            if key in DEFAULTS[section] and value is not None:
                result[section][key] = value
    validate(result)
    return result


def replace(patch: object) -> ConfigDocument:
    """A whole new document (``PUT /api/v4/config``): what the body names, defaults for the rest.

    Mattermost fills every setting a full update leaves out with its default, not with the
    current value; unknown sections and keys are ignored as in :func:`merge`.
    """
    if not isinstance(patch, dict):
        raise BadRequest("api.config.update_config.app_error", "The config must be a JSON object.")
    return merge(defaults(), patch)


def with_defaults(stored: object) -> ConfigDocument:
    """Fill a stored document's gaps with defaults (tolerates an old or partial document)."""
    result = defaults()
    if isinstance(stored, dict):
        for section, values in stored.items():
            if section in result and isinstance(values, dict):
                for key, value in values.items():
                    if key in result[section]:
                        result[section][key] = value
    return result


def _invalid(name: str, why: str) -> BadRequest:
    return BadRequest("model.config.is_valid.app_error", f"Invalid configuration: {name} {why}.")


def validate(config: ConfigDocument) -> None:
    """Types match the defaults' types; numbers are in range."""
    for section, values in DEFAULTS.items():
        for key, default in values.items():
            value = config[section][key]
            name = f"{section}.{key}"
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise _invalid(name, "must be true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _invalid(name, "must be an integer")
                if not INT64_MIN <= value <= INT64_MAX:
                    raise _invalid(name, "is out of range")
            elif isinstance(default, str):
                if not isinstance(value, str):
                    raise _invalid(name, "must be a string")
            elif isinstance(default, list) and (
                not isinstance(value, list)
                or not all(
                    isinstance(v, int | float)
                    and not isinstance(v, bool)
                    and 0 <= v <= MAX_LIST_NUMBER
                    for v in value
                )
            ):
                raise _invalid(name, "must be a list of non-negative numbers")
    service = config["ServiceSettings"]
    if service["OutgoingIntegrationRequestsTimeout"] <= 0:
        raise BadRequest(
            "model.config.is_valid.outgoing_integrations_request_timeout.app_error",
            "Outgoing integration requests timeout must be a positive number.",
        )
    if service["MaximumPayloadSizeBytes"] <= 0:
        raise _invalid("ServiceSettings.MaximumPayloadSizeBytes", "must be positive")
    if len(service["OutgoingWebhookRetryScheduleSeconds"]) > 20:
        raise _invalid(
            "ServiceSettings.OutgoingWebhookRetryScheduleSeconds", "allows at most 20 retries"
        )
    if not 1 <= service["OutgoingWebhookMaxConcurrencyPerDestination"] <= 256:
        raise _invalid(
            "ServiceSettings.OutgoingWebhookMaxConcurrencyPerDestination", "must be 1–256"
        )
    for name in ("OutgoingWebhookMaxConcurrencyPerOwner", "OutgoingWebhookMaxConcurrencyPerTeam"):
        if not 0 <= service[name] <= 4096:
            raise _invalid(f"ServiceSettings.{name}", "must be 0 (automatic) to 4096")
    if service["OutgoingWebhookDeliveryRetentionDays"] < 1:
        raise _invalid("ServiceSettings.OutgoingWebhookDeliveryRetentionDays", "must be at least 1")
    if service["OutgoingWebhookAutoDisableHours"] < 1:
        raise _invalid("ServiceSettings.OutgoingWebhookAutoDisableHours", "must be at least 1")
    if not 1 <= service["OutgoingWebhookResponseUrlMinutes"] <= MAX_RESPONSE_URL_MINUTES:
        raise _invalid(
            "ServiceSettings.OutgoingWebhookResponseUrlMinutes",
            f"must be 1 to {MAX_RESPONSE_URL_MINUTES}",
        )
    if not 0 <= service["OutgoingWebhookMaxChainDepth"] <= MAX_CHAIN_DEPTH:
        raise _invalid(
            "ServiceSettings.OutgoingWebhookMaxChainDepth", f"must be 0 to {MAX_CHAIN_DEPTH}"
        )
    length = config["PasswordSettings"]["MinimumLength"]
    if not PASSWORD_LENGTH_FLOOR <= length <= PASSWORD_LENGTH_CEILING:
        raise BadRequest(
            "model.config.is_valid.password_length.app_error",
            f"Minimum password length must be a whole number between {PASSWORD_LENGTH_FLOOR} "
            f"and {PASSWORD_LENGTH_CEILING}.",
        )


def password_rules(config: ConfigDocument) -> PasswordRules:
    """The sign-up and password-change rules of the document."""
    section = config["PasswordSettings"]
    return PasswordRules(
        minimum_length=section["MinimumLength"],
        lowercase=section["Lowercase"],
        uppercase=section["Uppercase"],
        number=section["Number"],
        symbol=section["Symbol"],
    )


def webhook_settings(config: ConfigDocument) -> WebhookSettings:
    """The engine's typed view of the document."""
    service = config["ServiceSettings"]
    return WebhookSettings(
        enabled=service["EnableOutgoingWebhooks"],
        username_override=service["EnablePostUsernameOverride"],
        icon_override=service["EnablePostIconOverride"],
        timeout_seconds=service["OutgoingIntegrationRequestsTimeout"],
        allowlist=service["AllowedUntrustedInternalConnections"],
        retry_schedule_seconds=tuple(
            float(v) for v in service["OutgoingWebhookRetryScheduleSeconds"]
        ),
        per_destination_cap=service["OutgoingWebhookMaxConcurrencyPerDestination"],
        per_owner_cap=service["OutgoingWebhookMaxConcurrencyPerOwner"],
        per_team_cap=service["OutgoingWebhookMaxConcurrencyPerTeam"],
        retention_days=service["OutgoingWebhookDeliveryRetentionDays"],
        auto_disable_hours=service["OutgoingWebhookAutoDisableHours"],
        auto_disable_min_failures=service["OutgoingWebhookAutoDisableMinFailures"],
        private_channels=service["EnableOutgoingWebhooksInPrivateChannels"],
        response_url_minutes=service["OutgoingWebhookResponseUrlMinutes"],
        max_chain_depth=service["OutgoingWebhookMaxChainDepth"],
        site_url=service["SiteURL"],
    )


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped; "" if malformed."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme or not rest:
        return ""
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].lower()
    scheme = scheme.lower()
    default = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}" if netloc and "@" not in netloc else ""


def _own_host(host: str, scheme: str) -> str:
    """A ``Host`` header as an origin's ``host[:port]``: lower-cased, the scheme's default port
    dropped (a proxy may forward ``chat.example:443`` for a page at ``https://chat.example``)."""
    host = host.strip().lower()
    default = {"http": ":80", "https": ":443"}[scheme]
    return host[: -len(default)] if host.endswith(default) else host


def origin_allowed(config: ConfigDocument, origin: str, host: str) -> bool:
    """May a browser page from ``origin`` use this site's cookies (a websocket, a typeless body)?

    With ``SiteURL`` set, it alone is the site's own origin: scheme, host and port exactly.
    Without it, an ``http`` or ``https`` origin whose ``host[:port]`` is the request's ``Host``
    counts as the site's own, whatever scheme the request itself came in on: behind a proxy
    that terminates TLS the request is ``http`` while the page is ``https``, and only the Host
    both share. ``AllowCorsFrom`` adds more origins, space-separated, or ``*`` for any.
    """
    wanted = _origin_of(origin)
    if not wanted:
        return False
    service = config["ServiceSettings"]
    allowed = service["AllowCorsFrom"].split()
    if "*" in allowed or wanted in {_origin_of(a) for a in allowed}:
        return True
    if service["SiteURL"]:
        return wanted == _origin_of(service["SiteURL"])
    scheme, _, netloc = wanted.partition("://")
    return scheme in ("http", "https") and netloc == _own_host(host, scheme)


def client_config(config: ConfigDocument, version: str) -> dict[str, str]:
    """The public, reduced map of ``GET /api/v4/config/client?format=old`` (all values strings)."""
    service = config["ServiceSettings"]
    team = config["TeamSettings"]
    passwords = config["PasswordSettings"]

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return {
        "Version": version,
        "BuildNumber": version,
        "SiteName": team["SiteName"],
        "SiteURL": service["SiteURL"],
        "EnableOutgoingWebhooks": flag(service["EnableOutgoingWebhooks"]),
        "EnablePostUsernameOverride": flag(service["EnablePostUsernameOverride"]),
        "EnablePostIconOverride": flag(service["EnablePostIconOverride"]),
        "EnableOpenServer": flag(team["EnableOpenServer"]),
        "EnableTeamCreation": flag(team["EnableTeamCreation"]),
        "EnableDeveloper": flag(service["EnableDeveloper"]),
        # Sign-up forms show the rules before the server refuses a password (Mattermost's keys).
        "PasswordMinimumLength": str(passwords["MinimumLength"]),
        "PasswordRequireLowercase": flag(passwords["Lowercase"]),
        "PasswordRequireUppercase": flag(passwords["Uppercase"]),
        "PasswordRequireNumber": flag(passwords["Number"]),
        "PasswordRequireSymbol": flag(passwords["Symbol"]),
    }
