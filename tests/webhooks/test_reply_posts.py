"""Turning a reply into posts: overrides, props, types, threads, attachments, splitting."""

import json
from typing import Any

import pytest

from tidings.domain.hooks import OutgoingHook
from tidings.domain.posts import MAX_USER_PROPS_RUNES, Post
from tidings.webhooks.replies import (
    Attachment,
    AttachmentField,
    Reply,
    ReplyError,
    ReplyPostSpec,
    ReplyPriority,
    build_reply_posts,
    parse_reply,
    user_ids_in_reply,
)

M = MAX_USER_PROPS_RUNES
USER_ID = "k3x1b8e5jpgzxq4n7w6ru1yqfa"


def make_hook(**overrides: Any) -> OutgoingHook:
    values: dict[str, Any] = {
        "id": "h" * 26,
        "token": "t" * 26,
        "create_at": 1,
        "update_at": 1,
        "delete_at": 0,
        "creator_id": "c" * 26,
        "channel_id": "ch" * 13,
        "team_id": "te" * 13,
        "trigger_words": ("Abracadabra",),
        "trigger_when": 0,
        "callback_urls": ("http://127.0.0.1:9/",),
        "display_name": "Magic",
        "username": "some-user-name",
        "icon_url": "http://some-icon/",
    }
    values.update(overrides)
    return OutgoingHook(**values)


def make_post(root_id: str = "") -> Post:
    return Post(
        id="p" * 26,
        create_at=1,
        update_at=1,
        edit_at=0,
        delete_at=0,
        user_id="u" * 26,
        channel_id="ch" * 13,
        root_id=root_id,
        message="Abracadabra",
    )


def build(
    reply: Reply,
    *,
    hook: OutgoingHook | None = None,
    post: Post | None = None,
    overrides: bool = True,
    usernames: dict[str, str] | None = None,
    max_message_runes: int = 10_000,
    creator_is_bot: bool = False,
) -> list[ReplyPostSpec]:
    return build_reply_posts(
        reply,
        hook or make_hook(),
        post or make_post(),
        username_override_enabled=overrides,
        icon_override_enabled=overrides,
        usernames_by_id=usernames or {},
        max_message_runes=max_message_runes,
        creator_is_bot=creator_is_bot,
    )


def only(specs: list[ReplyPostSpec]) -> ReplyPostSpec:
    assert len(specs) == 1
    return specs[0]


def go_json_runes(value: Any) -> int:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text) + 5 * sum(text.count(char) for char in "<>&\u2028\u2029")


def test_overrides_on_use_the_hook_username_and_icon() -> None:
    """With both settings on, the hook's username and icon become override props."""
    spec = only(build(Reply(text="sample response text from test server")))
    assert spec.message == "sample response text from test server"
    assert spec.type == ""
    assert spec.root_id == ""
    assert spec.props == {
        "from_webhook": "true",
        "webhook_display_name": "Magic",
        "override_username": "some-user-name",
        "override_icon_url": "http://some-icon/",
    }


def test_overrides_off_leave_no_override_props() -> None:
    """With both settings off there is no override_username, icon or emoji prop."""
    reply = Reply(text="x", username="webhookuser", icon_url="http://i/", icon_emoji=":smile:")
    spec = only(build(reply, overrides=False))
    assert spec.props == {"from_webhook": "true", "webhook_display_name": "Magic"}


def test_response_username_and_icon_win_over_the_hook() -> None:
    """The reply's username and icon_url beat the hook's."""
    reply = Reply(text="x", username="webhookuser", icon_url="http://webhook/icon")
    props = only(build(reply)).props
    assert props["override_username"] == "webhookuser"
    assert props["override_icon_url"] == "http://webhook/icon"


def test_default_username_is_webhook_and_no_icon_without_one() -> None:
    """With no username anywhere the override is "webhook"; with no icon there is no prop."""
    props = only(build(Reply(text="x"), hook=make_hook(username="", icon_url=""))).props
    assert props["override_username"] == "webhook"
    assert "override_icon_url" not in props


def test_icon_emoji_is_honoured_when_icon_override_is_on() -> None:
    """Tidings divergence: the reply's icon_emoji becomes override_icon_emoji."""
    props = only(build(Reply(text="x", icon_emoji=":robot_face:"))).props
    assert props["override_icon_emoji"] == ":robot_face:"
    assert props["override_icon_url"] == "http://some-icon/"


def test_reply_cannot_set_reserved_props() -> None:
    """Props claiming webhook, bot or override identity are dropped; others are kept."""
    reply = Reply(
        text="x",
        props={
            "from_webhook": "false",
            "override_username": "admin",
            "override_icon_url": "http://evil/",
            "override_icon_emoji": ":skull:",
            "webhook_display_name": "Fake",
            "from_bot": "false",
            "attachments": [{"text": "sneaky"}],
            "card": "kept",
            "nested": {"a": 1},
        },
    )
    assert only(build(reply, overrides=False)).props == {
        "from_webhook": "true",
        "webhook_display_name": "Magic",
        "card": "kept",
        "nested": {"a": 1},
    }


def test_webhook_display_name_is_always_the_hooks() -> None:
    """Even an empty display name overwrites whatever the reply sent."""
    reply = Reply(text="x", props={"webhook_display_name": "Fake"})
    props = only(build(reply, hook=make_hook(display_name=""), overrides=False)).props
    assert props["webhook_display_name"] == ""


def test_bot_creator_adds_from_bot() -> None:
    """When the hook's creator is a bot the posts say so."""
    assert only(build(Reply(text="x"), creator_is_bot=True)).props["from_bot"] == "true"


def test_comment_replies_in_the_triggering_thread() -> None:
    """``response_type: comment`` makes the post a reply to the triggering post."""
    spec = only(build(Reply(text="x", response_type="comment")))
    assert spec.root_id == "p" * 26


def test_comment_on_a_reply_goes_to_the_thread_root() -> None:
    """Tidings divergence: when the trigger was itself a reply, the comment joins its root."""
    spec = only(build(Reply(text="x", response_type="comment"), post=make_post(root_id="r" * 26)))
    assert spec.root_id == "r" * 26


@pytest.mark.parametrize("response_type", ["", "post", "Comment", "in_channel"])
def test_other_response_types_post_in_the_channel(response_type: str) -> None:
    """Only the exact string ``comment`` threads the reply."""
    spec = only(build(Reply(text="x", response_type=response_type), post=make_post("r" * 26)))
    assert spec.root_id == ""


@pytest.mark.parametrize(
    "reply", [Reply(), Reply(username="x"), Reply(props={"a": 1}), Reply(type="system_generic")]
)
def test_reply_without_text_or_attachments_posts_nothing(reply: Reply) -> None:
    """Neither text nor attachments: no post, and no error."""
    assert build(reply) == []


def test_empty_text_still_makes_a_post() -> None:
    """``{"text": ""}`` posts an empty message."""
    assert only(build(Reply(text=""))).message == ""


def test_attachments_alone_make_a_slack_attachment_post() -> None:
    """``{"attachments":[{"text":"t"}]}`` posts an empty message of type slack_attachment."""
    reply = parse_reply(b'{"attachments": [{"text": "t"}]}')
    assert reply is not None
    spec = only(build(reply, overrides=False))
    assert spec.message == ""
    assert spec.type == "slack_attachment"
    assert spec.props["attachments"] == [{"text": "t"}]


def test_only_null_attachments_post_an_empty_message_without_attachments() -> None:
    """Null entries count for "post or not" but are dropped from the post."""
    spec = only(build(Reply(attachments=(None,)), overrides=False))
    assert spec == ReplyPostSpec(
        message="",
        type="",
        root_id="",
        props={"from_webhook": "true", "webhook_display_name": "Magic"},
    )


def test_null_attachments_are_removed_in_order() -> None:
    """``[nil, a, nil, b]`` keeps a and b, in that order."""
    reply = Reply(
        text="x",
        attachments=(None, Attachment(pretext="pretext"), None, Attachment(pretext="pretext2")),
    )
    assert only(build(reply)).props["attachments"] == [
        {"pretext": "pretext"},
        {"pretext": "pretext2"},
    ]


def test_attachments_get_slack_text_and_loose_links() -> None:
    """Mentions convert in pretext, text, title and values; links only outside the title."""
    slack = f"<!channel> x <!here> <@{USER_ID}> <http://a|b|c>"
    reply = Reply(
        attachments=(
            Attachment(
                pretext=slack,
                text=slack,
                title=slack,
                footer=slack,
                fields=(AttachmentField(title=slack, value=slack, short=True), None),
            ),
        )
    )
    converted = "@channel x @here @alice [b|c](http://a)"
    attachment = only(build(reply, usernames={USER_ID: "alice"})).props["attachments"][0]
    assert attachment == {
        "pretext": converted,
        "title": "@channel x @here @alice <http://a|b|c>",
        "text": converted,
        "fields": [{"title": slack, "value": converted, "short": True}],
        "footer": slack,
    }


def test_field_values_are_go_formatted_and_null_stays_null() -> None:
    """Numbers and bools in field values become Go ``%v`` strings; null is left alone."""
    reply = parse_reply(
        b'{"attachments": [{"fields": [{"value": 1000000}, {"value": 42}, {"value": 1.5},'
        b' {"value": 0.00001}, {"value": true}, {"value": null}, {"value": [1, 2]}]}]}'
    )
    assert reply is not None
    fields = only(build(reply)).props["attachments"][0]["fields"]
    assert [field["value"] for field in fields] == [
        "1e+06",
        "42",
        "1.5",
        "1e-05",
        "true",
        None,
        "[1 2]",
    ]


def test_message_gets_slack_text_then_strict_links() -> None:
    """The reply text converts announcements, known mentions and ``<url|label>`` links."""
    reply = Reply(text=f"<!here> <@{USER_ID}> see <https://x.org|X> `a < b || c > d`")
    spec = only(build(reply, usernames={USER_ID: "alice"}))
    assert spec.message == "@here @alice see [X](https://x.org) `a < b || c > d`"


def test_user_ids_in_reply_covers_text_and_attachments() -> None:
    """The caller can look up every id the conversions will need in one query."""
    reply = Reply(
        text="<@a1>",
        attachments=(
            None,
            Attachment(
                pretext="<@b2>",
                text="<@c3>",
                title="<@d4>",
                footer="<@zz>",
                fields=(AttachmentField(title="<@yy>", value=["<@e5>"]), None),
            ),
        ),
    )
    assert user_ids_in_reply(reply) == {"a1", "b2", "c3", "d4", "e5"}


@pytest.mark.parametrize("post_type", ["custom_as", "slack_attachment", ""])
def test_allowed_types(post_type: str) -> None:
    """``custom_*``, ``slack_attachment`` and "" are accepted as given."""
    assert only(build(Reply(text="x", type=post_type))).type == post_type


def test_custom_type_with_attachments_is_kept() -> None:
    """Attachments set slack_attachment only when the reply names no type."""
    reply = Reply(text="x", type="custom_card", attachments=(Attachment(text="t"),))
    assert only(build(reply)).type == "custom_card"


def test_system_type_is_refused() -> None:
    """A ``system_`` type posts nothing and says ``post.type``."""
    with pytest.raises(ReplyError, match=r"post\.type") as raised:
        build(Reply(text="x", type="system_generic"))
    assert raised.value.error_id == "api.context.invalid_param.app_error"


@pytest.mark.parametrize("post_type", ["reminder", "Custom_x", "slack_attachments"])
def test_unknown_type_is_refused(post_type: str) -> None:
    """Other types fail the post's validity check: nothing is posted."""
    with pytest.raises(ReplyError) as raised:
        build(Reply(text="x", type=post_type))
    assert raised.value.error_id == "model.post.is_valid.type.app_error"


def test_priority_is_carried_and_must_name_a_priority() -> None:
    """A priority object is carried to every post; without ``priority`` nothing is posted."""
    priority = ReplyPriority(priority="urgent", requested_ack=True)
    assert only(build(Reply(text="x", priority=priority))).priority == priority
    with pytest.raises(ReplyError, match=r"webhook\.priority\.priority"):
        build(Reply(text="x", priority=ReplyPriority(requested_ack=True)))


def test_long_message_is_cut_at_the_code_point_limit() -> None:
    """15,000 × "本" with a 10,000 limit becomes posts of 10,000 and 5,000 characters."""
    specs = build(Reply(text="本" * 15_000, response_type="comment"))
    assert [spec.message for spec in specs] == ["本" * 10_000, "本" * 5_000]
    assert all(spec.root_id == "p" * 26 for spec in specs)
    assert specs[0].props == specs[1].props
    assert specs[0].props is not specs[1].props


@pytest.mark.parametrize(("length", "parts"), [(0, 1), (10_000, 1), (10_001, 2), (20_000, 2)])
def test_message_split_boundaries(length: int, parts: int) -> None:
    """A message of exactly the limit stays one post; one more character makes two."""
    specs = build(Reply(text="x" * length))
    assert len(specs) == parts
    assert "".join(spec.message for spec in specs) == "x" * length


def test_default_limit_is_16383_characters() -> None:
    """Without an explicit limit a post holds 16,383 characters."""
    specs = build_reply_posts(
        Reply(text="y" * 16_384),
        make_hook(),
        make_post(),
        username_override_enabled=False,
        icon_override_enabled=False,
        usernames_by_id={},
    )
    assert [len(spec.message) for spec in specs] == [16_383, 1]


def attachments_of(*sizes: int) -> tuple[Attachment, ...]:
    return tuple(Attachment(text="a" * size) for size in sizes)


def shape(specs: list[ReplyPostSpec]) -> list[tuple[int, list[int]]]:
    """Each part as (message length, [attachment text lengths])."""
    return [
        (len(spec.message), [len(item["text"]) for item in spec.props.get("attachments", [])])
        for spec in specs
    ]


def test_small_attachments_stay_with_a_short_message() -> None:
    """Message 10 + attachments [100, 150, 200] is one post, unchanged."""
    specs = build(Reply(text="m" * 10, attachments=attachments_of(100, 150, 200)))
    assert shape(specs) == [(10, [100, 150, 200])]


def test_attachments_that_do_not_fit_start_an_empty_post() -> None:
    """Message 9,999 + [¾M, ¼M] → [9,999 + ¾M], ["" + ¼M]."""
    specs = build(Reply(text="m" * 9_999, attachments=attachments_of(M * 3 // 4, M // 4)))
    assert shape(specs) == [(9_999, [M * 3 // 4]), (0, [M // 4])]
    assert all(spec.type == "slack_attachment" for spec in specs)


@pytest.mark.parametrize("first", [1_000, 5_150])
def test_attachments_go_with_the_last_text_part(first: int) -> None:
    """15,000 chars + [first, 2,000, M−1,000] → [10,000], [5,000 + two], ["" + the big one]."""
    reply = Reply(text="m" * 15_000, attachments=attachments_of(first, 2_000, M - 1_000))
    assert shape(build(reply)) == [(10_000, []), (5_000, [first, 2_000]), (0, [M - 1_000])]


def test_every_part_keeps_its_props_within_the_limit() -> None:
    """No part's props JSON is longer than 760,000 code points, escapes counted as Go does."""
    reply = Reply(text="m", attachments=tuple(Attachment(text="<&>" * 60_000) for _ in range(5)))
    specs = build(reply)
    assert len(specs) > 1
    assert all(go_json_runes(spec.props) <= M for spec in specs)
    assert sum(len(spec.props["attachments"]) for spec in specs) == 5


def test_a_single_oversized_attachment_has_its_text_cut() -> None:
    """An attachment too large even alone is shortened just enough to fit."""
    specs = build(Reply(text="hi", attachments=(Attachment(title="t", text="a" * (M + 500)),)))
    assert len(specs) == 1
    props = specs[0].props
    assert go_json_runes(props) == M
    assert props["attachments"][0]["title"] == "t"
    assert props["attachments"][0]["text"] == "a" * len(props["attachments"][0]["text"])


def test_attachment_too_large_without_enough_text_is_refused() -> None:
    """When cutting the text cannot make an attachment fit, nothing is posted."""
    with pytest.raises(ReplyError) as raised:
        build(Reply(text="x", attachments=(Attachment(title="t" * (M + 10), text="short"),)))
    assert raised.value.error_id == "web.incoming_webhook.split_props_length.app_error"


def test_props_too_large_are_refused() -> None:
    """Props of ``{"foo": "x" × 1,520,000}`` cannot be posted at all."""
    with pytest.raises(ReplyError) as raised:
        build(Reply(text="x", props={"foo": "x" * 1_520_000}))
    assert raised.value.error_id == "web.incoming_webhook.split_props_length.app_error"


def test_end_to_end_reply_from_bytes() -> None:
    """A Mattermost test server's reply parses and builds into one threaded custom post."""
    reply = parse_reply(
        b'{"text":"some test text","username":"TestCommandServer",'
        b'"icon_url":"https://example.com/icon.png","type":"custom_as","response_type":"comment"}'
    )
    assert reply is not None
    assert build(reply) == [
        ReplyPostSpec(
            message="some test text",
            type="custom_as",
            root_id="p" * 26,
            props={
                "from_webhook": "true",
                "webhook_display_name": "Magic",
                "override_username": "TestCommandServer",
                "override_icon_url": "https://example.com/icon.png",
            },
        )
    ]


def test_nul_bytes_in_a_reply_are_dropped_everywhere() -> None:
    """NULs in text, username, props and attachments never reach a post (as Mattermost)."""
    reply = parse_reply(
        json.dumps(
            {
                "text": "a\u0000b",
                "username": "bo\u0000t",
                "props": {"k\u0000": "v\u0000"},
                "attachments": [
                    {"text": "t\u0000x", "fields": [{"title": "f", "value": "\u0000v"}]}
                ],
            }
        ).encode()
    )
    assert reply is not None
    assert reply.text == "ab"
    assert reply.username == "bot"
    (spec,) = build_reply_posts(
        reply,
        make_hook(),
        make_post(),
        username_override_enabled=True,
        icon_override_enabled=False,
        usernames_by_id={},
    )
    assert spec.message == "ab"
    assert spec.props["k"] == "v"
    assert spec.props["override_username"] == "bot"
    assert spec.props["attachments"][0]["text"] == "tx"
    assert spec.props["attachments"][0]["fields"][0]["value"] == "v"
    assert "\x00" not in json.dumps(spec.props)


def test_a_type_longer_than_mattermost_allows_is_refused() -> None:
    """Post types are at most 26 characters (Mattermost's Post.IsValid); longer ones post nothing."""
    ok = parse_reply(json.dumps({"text": "x", "type": "custom_" + "y" * 19}).encode())
    too_long = parse_reply(json.dumps({"text": "x", "type": "custom_" + "y" * 20}).encode())
    assert ok is not None
    assert too_long is not None
    kwargs: dict[str, Any] = {
        "username_override_enabled": False,
        "icon_override_enabled": False,
        "usernames_by_id": {},
    }
    assert build_reply_posts(ok, make_hook(), make_post(), **kwargs)[0].type == ok.type
    with pytest.raises(ReplyError) as refused:
        build_reply_posts(too_long, make_hook(), make_post(), **kwargs)
    assert refused.value.error_id == "model.post.is_valid.type.app_error"
