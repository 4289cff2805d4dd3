"""Names people read: usernames, emails and product names that cannot impersonate or hide.

The one place for the username rules; the input schemas, the Store, the bulk import,
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

The character classes, and the rules of emails, product names and
descriptions, are written in :mod:`shopdb.limits` with every other rule on
stored values, and named here too; the username rules (PRECIS, the keys)
are this module's.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from shopdb.limits import (
    BIDI_CONTROL,
    BLANK,
    CONTROL,
    CONTROL_BUT_TAB_NEWLINE,
    DESCRIPTION_CHECK,
    EMAIL_CHECK,
    EMAIL_FORBIDDEN,
    INVISIBLE,
    INVISIBLE_ASTRAL,
    LINE_SEPARATOR,
    NAME_CHECK,
    NAME_FORBIDDEN,
    NAME_INVISIBLE,
    USERNAME_CHECK,
    USERNAME_FORBIDDEN,
    USERNAME_MAX,
    character_name,
)
from shopdb.limits import description_characters_problem as description_problem
from shopdb.limits import email_characters_problem as email_problem
from shopdb.limits import name_characters_problem as product_name_problem

# The character classes and the character rules of emails, product names and
# descriptions live in shopdb.limits with the other rules; named here too, as before.
__all__ = [
    "BIDI_CONTROL",
    "BLANK",
    "CONTROL",
    "CONTROL_BUT_TAB_NEWLINE",
    "DESCRIPTION_CHECK",
    "EMAIL_CHECK",
    "EMAIL_FORBIDDEN",
    "INVISIBLE",
    "INVISIBLE_ASTRAL",
    "LINE_SEPARATOR",
    "NAME_CHECK",
    "NAME_FORBIDDEN",
    "NAME_INVISIBLE",
    "USERNAME_CHECK",
    "USERNAME_FORBIDDEN",
    "description_problem",
    "email_problem",
    "login_key",
    "prepare_username",
    "product_name_problem",
    "username_key",
]

if TYPE_CHECKING:
    from collections.abc import Mapping

    from precis_i18n.profile import Profile

_INVISIBLE = re.compile(f"[{INVISIBLE}{INVISIBLE_ASTRAL}]")

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


def _precis_reason(exc: UnicodeEncodeError) -> str:
    kind = exc.reason.removeprefix("DISALLOWED/")
    if kind in _WHOLE:
        return _WHOLE[kind]
    char = exc.object[exc.start] if exc.end - exc.start == 1 else None
    what = _KINDS.get(kind, "a character usernames may not hold")
    if kind not in _KINDS and char is not None:
        what = f"{character_name(char)} there (PRECIS context rule {kind})"
        return f"must not contain {what}"
    return f"must not contain {what}" + (f" ({character_name(char)})" if char else "")


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
