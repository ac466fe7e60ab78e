"""``/api/v4/config``: admin-only reads, validated merge patches, and the public client config."""

from collections.abc import Iterator

import pytest
from mattermost_contract import assert_app_error

from support import Api

pytestmark = pytest.mark.db


@pytest.fixture
def restore_config(admin: Api) -> Iterator[None]:
    """Put back the settings these tests change."""
    before = admin.get("/config")
    yield
    admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                k: before["ServiceSettings"][k]
                for k in ("SiteURL", "EnableDeveloper", "OutgoingIntegrationRequestsTimeout")
            },
            "TeamSettings": {"SiteName": before["TeamSettings"]["SiteName"]},
        },
    )


def test_config_is_for_system_admins(admin: Api, member: Api, anonymous: Api) -> None:
    """Admins read the whole document; members get 403 and strangers 401, for read and patch."""
    config = admin.get("/config")
    assert config["ServiceSettings"]["MaximumPayloadSizeBytes"] == 300_000
    assert isinstance(config["TeamSettings"]["SiteName"], str)
    for method, path, body in (("GET", "/config", None), ("PUT", "/config/patch", {})):
        assert_app_error(
            member.request(method, path, body), 403, "api.context.permissions.app_error"
        )
        assert_app_error(anonymous.request(method, path, body), 401)


def test_a_patch_merges_into_the_document(admin: Api, restore_config: None) -> None:
    """A patch changes only what it names, answers the whole document, and is read back at once."""
    before = admin.get("/config")
    after = admin.put(
        "/config/patch",
        {
            "ServiceSettings": {"SiteURL": "https://chat.example.test"},
            "TeamSettings": {"SiteName": "Ours"},
        },
    )
    assert after["ServiceSettings"]["SiteURL"] == "https://chat.example.test"
    assert after["TeamSettings"]["SiteName"] == "Ours"
    for section, values in before.items():
        for key, value in values.items():
            if key not in ("SiteURL", "SiteName"):
                assert after[section][key] == value, key
    assert admin.get("/config") == after


def test_unknown_keys_and_sections_are_ignored(admin: Api, restore_config: None) -> None:
    """Settings Tidings does not know are dropped silently, as Mattermost does."""
    after = admin.put(
        "/config/patch",
        {
            "ServiceSettings": {"NoSuchSetting": 1, "EnableDeveloper": False},
            "PluginSettings": {"Enable": True},
        },
    )
    assert "NoSuchSetting" not in after["ServiceSettings"]
    assert "PluginSettings" not in after


@pytest.mark.parametrize(
    "patch",
    [
        {"ServiceSettings": {"EnableDeveloper": "true"}},
        {"ServiceSettings": {"OutgoingIntegrationRequestsTimeout": "30"}},
        {"ServiceSettings": {"OutgoingIntegrationRequestsTimeout": 0}},
        {"ServiceSettings": {"OutgoingIntegrationRequestsTimeout": True}},
        {"ServiceSettings": {"MaximumPayloadSizeBytes": 2**63}},
        {"ServiceSettings": {"SiteURL": 5}},
        {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": [5, "30"]}},
        {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": 5}},
        [],
        None,
    ],
)
def test_a_wrong_type_is_a_400_and_changes_nothing(admin: Api, patch: object) -> None:
    """An invalid value anywhere in the patch is a 400 and nothing of the patch is applied."""
    before = admin.get("/config")
    response = admin.request("PUT", "/config/patch", patch)
    assert_app_error(response, 400)
    assert admin.get("/config") == before


def test_null_in_a_patch_changes_nothing(admin: Api, restore_config: None) -> None:
    """``null`` is an unset Go pointer in Mattermost's config: the setting keeps its value."""
    before = admin.get("/config")
    after = admin.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "SiteURL": None,
                "EnableDeveloper": not before["ServiceSettings"]["EnableDeveloper"],
            },
            "TeamSettings": None,
        },
    )
    assert after["ServiceSettings"]["SiteURL"] == before["ServiceSettings"]["SiteURL"]
    assert (
        after["ServiceSettings"]["EnableDeveloper"] != before["ServiceSettings"]["EnableDeveloper"]
    )
    assert after["TeamSettings"] == before["TeamSettings"]


def test_a_partly_invalid_patch_applies_nothing(admin: Api, restore_config: None) -> None:
    """Validation covers the whole patch: a valid setting beside an invalid one is not saved."""
    before = admin.get("/config")["ServiceSettings"]["SiteURL"]
    response = admin.request(
        "PUT",
        "/config/patch",
        {"ServiceSettings": {"SiteURL": "https://half.example.test", "EnableDeveloper": "yes"}},
    )
    assert_app_error(response, 400)
    assert admin.get("/config")["ServiceSettings"]["SiteURL"] == before


def test_developer_mode_shows_detailed_errors(admin: Api, restore_config: None) -> None:
    """``detailed_error`` is blank by default and filled when EnableDeveloper is on."""
    bad = {"login_id": 5, "password": "x"}
    assert admin.request("POST", "/users/login", bad).json()["detailed_error"] == ""
    admin.put("/config/patch", {"ServiceSettings": {"EnableDeveloper": True}})
    assert admin.request("POST", "/users/login", bad).json()["detailed_error"] != ""


def test_the_client_config_is_public_and_all_strings(anonymous: Api, admin: Api) -> None:
    """``/config/client?format=old`` needs no session and is a flat map of strings."""
    client = anonymous.get("/config/client", params={"format": "old"})
    assert client["Version"]
    assert client["SiteName"] == admin.get("/config")["TeamSettings"]["SiteName"]
    assert client["EnableOutgoingWebhooks"] in ("true", "false")
    assert all(isinstance(v, str) for v in client.values())
    assert "MaximumPayloadSizeBytes" not in client


def test_the_client_config_needs_the_old_format(anonymous: Api) -> None:
    """As in Mattermost, a missing ``format`` is 501 (not implemented) and another one a 400."""
    assert_app_error(anonymous.request("GET", "/config/client"), 501)
    assert_app_error(anonymous.request("GET", "/config/client", params={"format": "new"}), 400)
