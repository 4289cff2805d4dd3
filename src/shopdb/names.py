"""Names people read: usernames, emails and product names that cannot impersonate or hide.

The one place for these rules; the input schemas, the Store, the bulk import,
seeding and the database's CHECKs all take them from here.

**Usernames** are prepared as RFC 8265 says for its UsernameCaseMapped
profile (PRECIS; ``precis-i18n`` implements it), after the NFKC
normalization shopdb always applied: letters, digits and ASCII punctuation,
mapped to lower case, in NFC. Refused: spaces, controls, invisible and
formatting characters (zero-width, bidi controls, U+3164), symbols (U+2800),
compatibility forms, unassigned code points, and text the bidi rule forbids.
shopdb also refuses ``@`` (a login is a username or an email) and a combining
mark at the start. The prepared form is what is stored and shown:
``ALICE`` registers as ``alice``.

**One account per look.** :func:`username_key` is what the database keeps
unique (``users.username_key``): the name case-folded in full (``straße``
and ``STRASSE`` are both ``strasse``), then reduced to its UTS #39
confusable skeleton (every character replaced by its prototype in Unicode's
``confusables.txt``, shipped as ``confusables.tsv``: the Cyrillic a, U+0430,
is ``a``, ``1`` is ``l``, ``m`` is ``rn``), twice over so a prototype that is a
capital (``0`` is ``O``) is folded too, with the nonspacing marks over
Latin, Greek and Cyrillic letters left out (``alicé``, ``ali̇ce`` are
``alice``). Names in scripts whose vowels are such marks (Thai, Devanagari)
keep them. :func:`login_key` is the same key for a login as typed, so
authentication finds ``ALICE``, ``Alice`` and a Cyrillic-a ``alice`` alike.

**Emails** hold no control, invisible, formatting, bidi or line-separator
character. **Product names** hold no control character, bidi control or
line separator, and at least one visible character (not only spaces,
zero-width characters, U+2800 or U+3164). **Descriptions** hold no control
character except newline and tab.

The character classes are the insides of regex brackets, written with
``\\uXXXX`` escapes so that Python's ``re``, PostgreSQL's regular
expressions and a JSON Schema pattern (ECMA-262) read them alike; the
``*_ASTRAL`` parts name code points above U+FFFF, which ECMA-262 (without
its ``u`` flag) cannot, and so are left out of the JSON Schemas only.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from shopdb.limits import SPACE, USERNAME_MAX

if TYPE_CHECKING:
    from collections.abc import Mapping

    from precis_i18n.profile import Profile

#: C0 and C1 controls (general category Cc), NUL included.
CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
#: Controls again, without tab and newline: what a description may not hold.
CONTROL_BUT_TAB_NEWLINE = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f"
#: Bidi embeddings, overrides and isolates: they reorder what follows them.
BIDI_CONTROL = "\\u202a-\\u202e\\u2066-\\u2069"
#: Line and paragraph separators: a line break by another name.
LINE_SEPARATOR = "\\u2028\\u2029"
#: Unicode's Default_Ignorable_Code_Point in the BMP: drawn as nothing (zero-width
#: spaces and joiners, bidi marks and controls, soft hyphen, variation selectors,
#: the Hangul fillers U+115F, U+1160, U+3164, U+FFA0).
INVISIBLE = (
    "\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f"
    "\\u202a-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff0-\\ufff8"
)
#: Default_Ignorable_Code_Point above the BMP (tags, musical formatting, ...).
INVISIBLE_ASTRAL = "\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff"
#: Characters drawn blank that are not white space: BRAILLE PATTERN BLANK.
BLANK = "\\u2800"

#: What no email may hold (white space is refused by its shape already).
EMAIL_FORBIDDEN = CONTROL + INVISIBLE + BLANK + LINE_SEPARATOR
#: What no product name may hold.
NAME_FORBIDDEN = CONTROL + BIDI_CONTROL + LINE_SEPARATOR
#: What does not count as a visible character of a product name.
NAME_INVISIBLE = SPACE + INVISIBLE + BLANK
#: What no username may hold: PRECIS refuses these and more; the database checks these.
USERNAME_FORBIDDEN = "@" + CONTROL + SPACE + INVISIBLE + BLANK

_EMAIL_FORBIDDEN = re.compile(f"[{EMAIL_FORBIDDEN}{INVISIBLE_ASTRAL}]")
_NAME_FORBIDDEN = re.compile(f"[{NAME_FORBIDDEN}]")
_NAME_VISIBLE = re.compile(f"[^{NAME_INVISIBLE}{INVISIBLE_ASTRAL}]")
_DESCRIPTION_FORBIDDEN = re.compile(f"[{CONTROL_BUT_TAB_NEWLINE}]")
_INVISIBLE = re.compile(f"[{INVISIBLE}{INVISIBLE_ASTRAL}]")

#: The database's CHECKs (migration 0010), in PostgreSQL's regular expressions.
USERNAME_CHECK = f"username !~ '[{USERNAME_FORBIDDEN}{INVISIBLE_ASTRAL}]'"
EMAIL_CHECK = f"email !~ '[{EMAIL_FORBIDDEN}{INVISIBLE_ASTRAL}]'"
NAME_CHECK = f"name !~ '[{NAME_FORBIDDEN}]' AND name ~ '[^{NAME_INVISIBLE}{INVISIBLE_ASTRAL}]'"
DESCRIPTION_CHECK = f"description !~ '[{CONTROL_BUT_TAB_NEWLINE}]'"

# Nonspacing marks over these letters (Latin, Greek, Cyrillic; ASCII digits and
# punctuation) are accents, left out of the key; elsewhere they may be vowels.
_ACCENTED = (
    (0x0021, 0x024F),
    (0x0370, 0x052F),
    (0x1D00, 0x1FFF),
    (0x2C60, 0x2C7F),
    (0xA640, 0xA69F),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
)
# NFKC composes at most 4 code points into one (U+1F82 is 4 in NFD), so a longer
# text cannot become a username: refused before any work on it (a 1 MB login).
_LONGEST_BEFORE_NFKC = 4 * USERNAME_MAX
# What PRECIS calls each kind of refused character, as the rest of a sentence.
_KINDS = {
    "controls": "a control character",
    "spaces": "a space",
    "precis_ignorable_properties": "an invisible or formatting character",
    "zero_width_joiner": "an invisible or formatting character",
    "zero_width_nonjoiner": "an invisible or formatting character",
    "symbols": "a symbol",
    "punctuation": "punctuation other than ASCII's",
    "has_compat": "a compatibility character",
    "old_hangul_jamo": "a Hangul filler or old jamo",
    "unassigned": "an unassigned code point",
}
_WHOLE = {
    "bidi_rule": "must not mix right-to-left and left-to-right text (RFC 5893's bidi rule)",
    "not_idempotent": "does not keep its form when prepared again (RFC 8264)",
    "empty": "must not be empty",
}


def prepare_username(value: str) -> str:
    """The username ``value`` stands for, as stored; ``ValueError`` (the reason) if none.

    NFKC, then PRECIS UsernameCaseMapped (lower case, NFC, IdentifierClass, the
    bidi rule); no ``@``, no leading combining mark, at most
    :data:`~shopdb.limits.USERNAME_MAX` characters.
    """
    if len(value) > _LONGEST_BEFORE_NFKC:
        raise ValueError(f"must be at most {USERNAME_MAX} characters")
    text = unicodedata.normalize("NFKC", value)
    try:
        prepared: str = _profile().enforce(text)
    except UnicodeEncodeError as exc:
        raise ValueError(_precis_reason(exc)) from None
    if unicodedata.normalize("NFKC", prepared) != prepared:
        raise ValueError(_WHOLE["not_idempotent"])
    if "@" in prepared:
        raise ValueError("must not contain '@'")
    if unicodedata.category(prepared[0]).startswith("M"):
        raise ValueError("must not begin with a combining mark")
    if len(prepared) > USERNAME_MAX:
        raise ValueError(f"must be at most {USERNAME_MAX} characters")
    return prepared


def username_key(value: str) -> str:
    """The key two usernames share when they are one account (see the module docs).

    ``value`` as given or as stored: it is prepared first. ``ValueError`` if it
    is not a username.
    """
    return _key(prepare_username(value))


def login_key(login: str) -> str | None:
    """The key to look a login up by when it is a username; None if it cannot be one.

    Authentication calls this and nothing else for usernames, so a login finds
    its account exactly as registration keyed it.
    """
    try:
        return username_key(login)
    except ValueError:
        return None


def email_problem(value: str) -> str | None:
    """What is wrong with the characters of an email (its shape is checked apart), or None."""
    found = _EMAIL_FORBIDDEN.search(value)
    if found is None:
        return None
    return f"must not contain control, invisible or formatting characters ({_named(found[0])})"


def product_name_problem(value: str) -> str | None:
    """What is wrong with a product name's characters (not its length), or None."""
    found = _NAME_FORBIDDEN.search(value)
    if found is not None:
        return (
            "must not contain control characters, bidi controls or line breaks "
            f"({_named(found[0])})"
        )
    if not _NAME_VISIBLE.search(value):
        return "must not be blank" if value.isspace() else "must not be only invisible characters"
    return None


def description_problem(value: str) -> str | None:
    """What is wrong with a product description's characters, or None."""
    found = _DESCRIPTION_FORBIDDEN.search(value)
    if found is None:
        return None
    return f"must not contain control characters other than newline and tab ({_named(found[0])})"


def _named(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character told apart from its look."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip()


def _precis_reason(exc: UnicodeEncodeError) -> str:
    kind = exc.reason.removeprefix("DISALLOWED/")
    if kind in _WHOLE:
        return _WHOLE[kind]
    char = exc.object[exc.start] if exc.end - exc.start == 1 else None
    what = _KINDS.get(kind, "a character usernames may not hold")
    if kind not in _KINDS and char is not None:
        what = f"{_named(char)} there (PRECIS context rule {kind})"
        return f"must not contain {what}"
    return f"must not contain {what}" + (f" ({_named(char)})" if char else "")


@cache
def _profile() -> Profile:
    import precis_i18n

    return precis_i18n.get_profile("UsernameCaseMapped")


def _key(prepared: str) -> str:
    text = prepared
    for _ in range(2):  # again: a prototype may be a capital (0 -> O), or hold an accent
        text = _without_accents(_skeleton(text.casefold()))
    return text


def _skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, without default ignorables, each character's prototype, NFD."""
    table = _prototypes()
    decomposed = _INVISIBLE.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in decomposed))


def _without_accents(text: str) -> str:
    kept: list[str] = []
    base = 0
    for char in text:
        if unicodedata.category(char) == "Mn":
            if any(low <= base <= high for low, high in _ACCENTED):
                continue
        else:
            base = ord(char)
        kept.append(char)
    return "".join(kept)


@cache
def _prototypes() -> Mapping[str, str]:
    """Unicode's confusables.txt as ``{character: prototype}`` (see ``confusables.tsv``)."""
    table: dict[str, str] = {}
    text = resources.files("shopdb").joinpath("confusables.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            source, target = line.split("\t")
            table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table
