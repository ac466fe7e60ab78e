"""Slack's text conventions, converted the way Mattermost does (REF §4.4), and Go's ``%v``.

``<!channel>``-style announcements, ``<@id>`` mentions, ``<url|label>`` links, and numbers in
attachment fields printed as Go prints a float64, so integrations written for Slack or
Mattermost render the same here.

Pure: imports only the standard library. No I/O.
"""

import math
import re
from collections.abc import Mapping
from typing import Any

_ANNOUNCEMENTS = (("<!channel>", "@channel"), ("<!here>", "@here"), ("<!all>", "@all"))
_USER_MENTION = re.compile(r"<@([a-zA-Z0-9]+)>")
# The message pattern refuses newlines and a second "|" so code such as `a < b || c > d` stays
# as written; attachment text keeps Mattermost's older, looser pattern.
#
# Both run in linear time here (tests/webhooks/test_text_linearity.py measures it). Each part is
# one character class that cannot hold the character ending it, so an attempt at a "<" reads its
# url part up to the next "<" or "|" (never into another attempt's url part), and a label part
# either ends in ">" (a match, which consumes what was read) or stops at a character no later
# label can cross. The message pattern is linear as written: its label stops at "|" and "\n"
# too. The attachment label stops only at ">", so from every "<" it would read on to the end of
# a text with no ">" left (quadratic: '<a|' * 40000 took half a minute); it is therefore only
# run up to the last ">", past which it cannot match, see :func:`convert_attachment_links`.
_MESSAGE_LINK = re.compile(r"<([^\n<|>]+)\|([^|\n>]+)>")
_ATTACHMENT_LINK = re.compile(r"<([^<|]+)\|([^>]+)>")
_LINK_REPLACEMENT = r"[\2](\1)"


def _go_float(number: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form from 1e+06 and below 1e-04."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    # repr() gives the same shortest round-trip digits Go's strconv picks.
    mantissa, _, exponent = repr(abs(number)).partition("e")
    point = mantissa.find(".") if "." in mantissa else len(mantissa)
    all_digits = mantissa.replace(".", "")
    significant = all_digits.lstrip("0")
    digits = significant.rstrip("0")
    # Where the decimal point falls relative to the first significant digit.
    point += (int(exponent) if exponent else 0) - (len(all_digits) - len(significant))
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{fraction}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_format_value(value: Any) -> str:
    """A decoded JSON value as Go's ``fmt.Sprintf("%v")`` prints it (numbers are float64)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _go_float(float(value))
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        # fmt prints maps with their keys sorted
        entries = (f"{key}:{go_format_value(value[key])}" for key in sorted(value))
        return "map[" + " ".join(entries) + "]"
    return str(value)


def _expand_announcements(text: str) -> str:
    for slack, ours in _ANNOUNCEMENTS:
        text = text.replace(slack, ours)
    return text


def user_ids_mentioned(text: str) -> set[str]:
    """The ids in ``<@id>`` mentions of ``text``, for the caller to look up as user ids."""
    if "<" not in text:  # every Slack construct starts with "<"; most replies have none
        return set()
    return set(_USER_MENTION.findall(_expand_announcements(text)))


def process_slack_text(text: str, usernames_by_id: Mapping[str, str]) -> str:
    """``<!channel>``/``<!here>``/``<!all>`` become @-mentions; ``<@id>`` of a known user
    becomes ``@username``. Unknown ids (Slack's ``U…`` ids, say) stay as they are."""
    if "<" not in text:
        return text

    def mention(found: re.Match[str]) -> str:
        username = usernames_by_id.get(found.group(1))
        return found.group() if username is None else f"@{username}"

    return _USER_MENTION.sub(mention, _expand_announcements(text))


def convert_message_links(text: str) -> str:
    """``<url|label>`` → ``[label](url)`` with the strict pattern used for a reply's text."""
    if "<" not in text:
        return text
    return _MESSAGE_LINK.sub(_LINK_REPLACEMENT, text)


def convert_attachment_links(text: str) -> str:
    """``<url|label>`` → ``[label](url)`` with the looser pattern used inside attachments."""
    # Every match ends with a ">", so none lies past the last one; cutting the text there leaves
    # each label a ">" to stop at, which keeps the scan linear (see _ATTACHMENT_LINK).
    last_close = text.rfind(">")
    if last_close == -1 or "<" not in text:
        return text
    end = last_close + 1
    return _ATTACHMENT_LINK.sub(_LINK_REPLACEMENT, text[:end]) + text[end:]
