"""Posts to HTML: the one place a message, its Slack attachments and its author line become markup.

Every post the web client shows — in a page, a fragment fetched after a websocket event, a thread
panel — goes through :func:`post_view`, and every list of them through :func:`page_views`, whose
posts share one page budget of Markdown. Markdown is CommonMark with tables, strikethrough, bare
URLs turned into links, and emoji shortcodes (``:white_check_mark:`` → ✅). Slack attachments
(``props.attachments``) get a colour bar, pretext, author, title link, text, fields, image and
footer. Whatever the message or props say, the result passes one nh3 sanitiser that keeps a
fixed set of tags, attributes, classes, style properties and URL schemes, so no script, event
handler or ``javascript:`` URL survives. Raw HTML in a message is shown as text, never parsed.

Pure: no I/O. Imports the standard library, markdown-it-py, emoji and nh3 only; never services,
store or api.
"""

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import emoji
import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

SLACK_COLOURS = {"good": "#2eb886", "warning": "#daa038", "danger": "#a30200"}
_HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BARE_URL = re.compile(r"(?<![\w/@.:-])((?:https?://|www\.)[^\s<>\"'`]+)", re.IGNORECASE)
_TRAILING = ".,:;!?*_~'\""
_SHORTCODE = re.compile(r":[a-zA-Z0-9_+-]+:")
MARKDOWN_BUDGET_CHARS = 32_768
"""How much of one post's text is rendered as Markdown; the rest is shown as plain text.

markdown-it-py is linear but slow on hostile input (about 15 µs a character for ``'![' * n``),
and attachments may hold 800,000 characters, so without a budget one post could hold a page for
seconds. Twice Mattermost's 16,383-character message limit: a full message and as much again of
attachments render as before; past that a post costs only escaping, at most ~0.5 s of Markdown.
"""
PAGE_MARKDOWN_BUDGET_CHARS = 2 * MARKDOWN_BUDGET_CHARS
"""How much Markdown one render call over many posts (a page, a fragment, a thread) may render.

markdown-it-py is pure Python: even in a worker thread it holds the GIL the event loop needs, so a
page of 30 hostile posts within their own budgets (~15 s) would starve the server. With a page
budget a page costs at most about two worst-case posts (~1 s); posts past it are shown as plain
text. A page of ordinary chat (a few hundred characters a post) never comes near it, so it
renders exactly as each post alone would.
"""
_MARKDOWN_CALL_CHARS = 64
"""What one Markdown call costs the budget at least, so 100,000 one-letter fields cannot run
the parser's fixed cost per call 100,000 times."""

_ATTACHMENT_CLASSES = {
    "attachment",
    "attachment-pretext",
    "attachment-body",
    "attachment-author",
    "attachment-title",
    "attachment-text",
    "attachment-fields",
    "attachment-field",
    "attachment-field-short",
    "attachment-field-title",
    "attachment-field-value",
    "attachment-image",
    "attachment-thumb",
    "attachment-footer",
    "attachment-icon",
}

_CLEANER = nh3.Cleaner(
    tags={
        "a",
        "p",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "strong",
        "em",
        "del",
        "s",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "img",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "div",
        "span",
    },
    attributes={
        "a": {"href", "title"},
        "img": {"src", "alt", "title"},
        "ol": {"start"},
        "th": {"style"},
        "td": {"style"},
        "div": {"style"},
    },
    allowed_classes={
        "div": _ATTACHMENT_CLASSES,
        "span": _ATTACHMENT_CLASSES,
        "img": _ATTACHMENT_CLASSES | {"inline-image"},
    },
    filter_style_properties={"text-align", "border-left-color"},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)


# --- markdown ------------------------------------------------------------------------------


def _bare_links(state: StateCore) -> None:
    """Turn bare ``http(s)://`` and ``www.`` URLs in text into links (outside links and code)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        inside_link = 0
        for token in block.children:
            if token.type == "link_open":
                inside_link += 1
            elif token.type == "link_close":
                inside_link -= 1
            if token.type != "text" or inside_link or not _BARE_URL.search(token.content):
                children.append(token)
                continue
            children.extend(_split_links(state, token))
        block.children = children


def _trim_url(url: str) -> str:
    """Leave trailing punctuation (and an unbalanced closing parenthesis) outside the link.

    One pass from the end with running counts: recounting the parentheses for each character
    cut made a URL ending in many ``)`` quadratic (a 290 KB post froze the server for a minute).
    """
    opening, closing = url.count("("), url.count(")")
    end = len(url)
    while end:
        last = url[end - 1]
        if last == ")" and opening < closing:
            closing -= 1
        elif last not in _TRAILING:
            break
        end -= 1
    return url[:end]


def _split_links(state: StateCore, token: Token) -> list[Token]:
    md = state.md
    out: list[Token] = []
    text = token.content
    position = 0
    for found in _BARE_URL.finditer(text):
        url = _trim_url(found.group(1))
        href = url if url.lower().startswith("http") else f"http://{url}"
        normalised = md.normalizeLink(href)
        if not url or "." not in url.split("//", 1)[-1] or not md.validateLink(normalised):
            continue
        if found.start() > position:
            out.append(_text_token(text[position : found.start()], token.level))
        link_open = Token("link_open", "a", 1, attrs={"href": normalised}, level=token.level)
        link_open.markup, link_open.info = "linkify", "auto"
        out.append(link_open)
        out.append(_text_token(url, token.level + 1))
        link_close = Token("link_close", "a", -1, level=token.level)
        link_close.markup, link_close.info = "linkify", "auto"
        out.append(link_close)
        position = found.start() + len(url)
    if position < len(text):
        out.append(_text_token(text[position:], token.level))
    return out


def _text_token(content: str, level: int) -> Token:
    return Token("text", "", 0, content=content, level=level)


def _emoji_shortcodes(state: StateCore) -> None:
    """``:white_check_mark:`` → ✅ in text (never inside code spans or code blocks)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        for token in block.children:
            if token.type == "text" and ":" in token.content:
                token.content = emojize(token.content)


def _build_markdown() -> MarkdownIt:
    # html=False: raw HTML in a message is text, never markup. breaks=True: a newline in a chat
    # message is a line break, as in Mattermost.
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("bare_links", _bare_links)
    md.core.ruler.push("emoji_shortcodes", _emoji_shortcodes)
    return md


_MARKDOWN = _build_markdown()


def emojize(text: str) -> str:
    """Replace known ``:shortcode:`` names (Slack's and GitHub's aliases) by their emoji."""
    if ":" not in text:
        return text
    return _SHORTCODE.sub(lambda m: emoji.emojize(m.group(0), language="alias"), text)


def sanitise(markup: str) -> str:
    """The one gate every piece of post markup passes before it reaches a page."""
    return _CLEANER.clean(markup)


class _Budget:
    """The characters of Markdown a post may still render (see MARKDOWN_BUDGET_CHARS)."""

    __slots__ = ("remaining",)

    def __init__(self, chars: int = MARKDOWN_BUDGET_CHARS) -> None:
        self.remaining = chars


def _plain_text(text: str) -> str:
    """Text over the Markdown budget: escaped, line breaks kept, in linear time."""
    escaped = html.escape(text).replace("\n", "<br>\n")
    return f"<p>{escaped}</p>\n"


def _markdown(text: str, budget: _Budget) -> str:
    """Markdown to HTML within the post's budget, not yet sanitised (callers sanitise the whole
    post once); a text longer than what is left of the budget is shown as plain text."""
    cost = max(len(text), _MARKDOWN_CALL_CHARS)
    if cost > budget.remaining:
        return _plain_text(text)
    budget.remaining -= cost
    rendered: str = _MARKDOWN.render(text)
    return rendered


def render_markdown(text: str) -> str:
    """A message's Markdown as sanitised HTML."""
    return sanitise(_markdown(text, _Budget()))


# --- Slack attachments ---------------------------------------------------------------------


def _string(value: Any) -> str:
    """Attachment fields are strings in Slack's format; anything else is ignored or shown as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


def _web_url(value: Any) -> str:
    """Only absolute http(s) URLs may become links or images."""
    url = _string(value).strip()
    return url if url.lower().startswith(("http://", "https://")) else ""


def attachment_colour(value: Any) -> str:
    """Slack's named colours or a hex colour as ``#rrggbb``; anything else is no colour."""
    colour = _string(value).strip()
    if colour in SLACK_COLOURS:
        return SLACK_COLOURS[colour]
    found = _HEX_COLOUR.match(colour)
    return f"#{found.group(1)}" if found else ""


def _timestamp(value: Any) -> str:
    try:
        seconds = float(_string(value))
        return datetime.fromtimestamp(seconds, UTC).strftime("%b %d, %Y %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return ""


def _icon(url: str) -> str:
    return f'<img class="attachment-icon" src="{html.escape(url)}" alt="">' if url else ""


def _field(item: Any, budget: _Budget) -> str:
    if not isinstance(item, Mapping):
        return ""
    title = html.escape(_string(item.get("title")))
    value = item.get("value")
    value_text = _string(value) if not isinstance(value, Mapping | list) else ""
    short = " attachment-field-short" if item.get("short") is True else ""
    return (
        f'<div class="attachment-field{short}">'
        f'<div class="attachment-field-title">{title}</div>'
        f'<div class="attachment-field-value">{_markdown(value_text, budget)}</div></div>'
    )


def _attachment(item: Mapping[str, Any], budget: _Budget) -> str:
    parts: list[str] = []
    author = html.escape(_string(item.get("author_name")))
    if author:
        link = _web_url(item.get("author_link"))
        name = f'<a href="{html.escape(link)}">{author}</a>' if link else author
        parts.append(
            f'<div class="attachment-author">{_icon(_web_url(item.get("author_icon")))}'
            f"<span>{name}</span></div>"
        )
    title = html.escape(_string(item.get("title")))
    if title:
        link = _web_url(item.get("title_link"))
        shown = f'<a href="{html.escape(link)}">{title}</a>' if link else title
        parts.append(f'<div class="attachment-title">{shown}</div>')
    text = _string(item.get("text"))
    if text:
        parts.append(f'<div class="attachment-text">{_markdown(text, budget)}</div>')
    fields = item.get("fields")
    if isinstance(fields, list) and fields:
        parts.append(
            f'<div class="attachment-fields">{"".join(_field(f, budget) for f in fields)}</div>'
        )
    image = _web_url(item.get("image_url"))
    if image:
        parts.append(f'<img class="attachment-image" src="{html.escape(image)}" alt="">')
    thumb = _web_url(item.get("thumb_url"))
    if thumb:
        parts.append(f'<img class="attachment-thumb" src="{html.escape(thumb)}" alt="">')
    footer = html.escape(_string(item.get("footer")))
    when = html.escape(_timestamp(item.get("ts")))
    if footer or when:
        joined = " · ".join(part for part in (footer, when) if part)
        parts.append(
            f'<div class="attachment-footer">{_icon(_web_url(item.get("footer_icon")))}'
            f"<span>{joined}</span></div>"
        )
    if not parts:
        # Nothing else to show: the plain-text fallback Slack clients use for notifications.
        fallback = html.escape(_string(item.get("fallback")))
        if fallback:
            parts.append(f'<div class="attachment-text"><p>{fallback}</p></div>')
    colour = attachment_colour(item.get("color"))
    style = f' style="border-left-color:{colour}"' if colour else ""
    pretext = _string(item.get("pretext"))
    pretext_html = (
        f'<div class="attachment-pretext">{_markdown(pretext, budget)}</div>' if pretext else ""
    )
    return (
        f'<div class="attachment">{pretext_html}'
        f'<div class="attachment-body"{style}>{"".join(parts)}</div></div>'
    )


def _attachments(value: Any, budget: _Budget) -> str:
    if not isinstance(value, list):
        return ""
    return "".join(_attachment(item, budget) for item in value if isinstance(item, Mapping))


def render_attachments(value: Any) -> str:
    """``props.attachments`` (any JSON; wrong shapes are skipped) as sanitised HTML."""
    return sanitise(_attachments(value, _Budget()))


# --- posts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Author:
    """What a post's author line needs to know about the account that made it."""

    username: str
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class PostView:
    """A post ready for the ``post`` template macro: every string here is safe to show."""

    id: str
    channel_id: str
    root_id: str
    user_id: str
    create_at: int
    iso_time: str
    short_time: str
    name: str
    bot: bool
    from_webhook: bool
    icon_url: str
    icon_emoji: str
    initial: str
    html: str
    edited: bool
    system: bool
    reply_count: int


def _time(ms: int) -> tuple[str, str]:
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return "", ""
    return moment.isoformat(timespec="seconds"), moment.strftime("%H:%M")


def _icon_emoji(value: Any) -> str:
    """An ``:emoji:`` override becomes its character; unknown names are dropped."""
    name = _string(value).strip()
    if not name:
        return ""
    if not name.startswith(":"):
        name = f":{name}:"
    shown = emojize(name)
    return "" if shown == name else shown


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class PageBudget(_Budget):
    """The Markdown characters a render call over many posts may still spend (see
    PAGE_MARKDOWN_BUDGET_CHARS); each post takes its own budget out of what is left."""

    __slots__ = ()

    def __init__(self, chars: int = PAGE_MARKDOWN_BUDGET_CHARS) -> None:
        super().__init__(chars)


def post_body_html(message: str, props: Mapping[str, Any], page: PageBudget | None = None) -> str:
    """The message and its attachments, sanitised together, in time bounded by their length
    (Markdown for at most MARKDOWN_BUDGET_CHARS of it, and no more than what is left of the
    ``page`` budget; linear escaping for the rest)."""
    allowed = MARKDOWN_BUDGET_CHARS if page is None else min(MARKDOWN_BUDGET_CHARS, page.remaining)
    budget = _Budget(allowed)
    body = _markdown(message, budget) if message.strip() else ""
    attachments = _attachments(props.get("attachments"), budget)
    if page is not None:
        page.remaining -= allowed - budget.remaining
    return sanitise(body + attachments)


def post_view(
    post: Mapping[str, Any], authors: Mapping[str, Author], page: PageBudget | None = None
) -> PostView:
    """A post (Mattermost's Post JSON) as the web client shows it; with ``page``, its Markdown
    comes out of that page's budget.

    Webhook posts (``props.from_webhook == "true"``) carry a BOT tag and show the override
    name and icon when the server stored one; bot accounts carry the tag too.
    """
    raw_props = post.get("props")
    props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
    user_id = _string(post.get("user_id"))
    author = authors.get(user_id)
    from_webhook = props.get("from_webhook") == "true"
    name = author.username if author else "someone"
    if from_webhook:
        name = _string(props.get("override_username")).strip() or name
    post_type = _string(post.get("type"))
    message = _string(post.get("message"))
    create_at = _int(post.get("create_at"))
    iso_time, short_time = _time(create_at)
    return PostView(
        id=_string(post.get("id")),
        channel_id=_string(post.get("channel_id")),
        root_id=_string(post.get("root_id")),
        user_id=user_id,
        create_at=create_at,
        iso_time=iso_time,
        short_time=short_time,
        name=name,
        bot=from_webhook or bool(author and author.is_bot),
        from_webhook=from_webhook,
        icon_url=_web_url(props.get("override_icon_url")) if from_webhook else "",
        icon_emoji=_icon_emoji(props.get("override_icon_emoji")) if from_webhook else "",
        initial=(name[:1] or "?").upper(),
        html=post_body_html(message, props, page),
        edited=_int(post.get("edit_at")) > 0,
        system=post_type.startswith("system_"),
        reply_count=_int(post.get("reply_count")),
    )


def page_views(posts: Sequence[Mapping[str, Any]], authors: Mapping[str, Author]) -> list[PostView]:
    """Posts as one page shows them, in the given order, sharing one PageBudget: the first
    posts get Markdown, and once the page's budget is spent the rest show as plain text."""
    page = PageBudget()
    return [post_view(post, authors, page) for post in posts]


def post_views(
    posts: Mapping[str, Any], order: Sequence[str], authors: Mapping[str, Author]
) -> list[PostView]:
    """A PostList's posts oldest first (the order a chat reads in), rendered newest first so
    the posts a reader sees first, at the bottom, are the ones the page budget serves."""
    newest_first = [posts[i] for i in order if isinstance(posts.get(i), Mapping)]
    return page_views(newest_first, authors)[::-1]
