"""Strings that come from the system (process names, command lines, user names), made safe to show.

Any local user can name a process, so these strings are hostile input. Two rules, applied at two
places:

- `escape_undecodable`, once, where such a string is read: bytes that are not UTF-8 reach Python
  as lone surrogates (surrogateescape) and become `\\xff`-style text, so everything downstream
  holds valid text and every output format (table, CSV, JSON, dashboard) shows the same name.
- `printable`, at every human-facing output (the dashboard, `list`'s table and CSV): C0 controls,
  DEL and C1 controls become `\\x1b`-style text, so a name cannot move the cursor, retitle the
  window or start a new row; bidi controls and invisible separators become `\\u202e`-style
  text, so a name cannot reorder or hide what is around it. JSON keeps the real value; its encoder escapes it.

Other Unicode (letters, marks, non-ASCII spaces) is kept as it is.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0, DEL, C1, surrogates; and the characters that reorder or hide text without drawing
# anything: bidi controls (U+202E makes "txt.exe" read "exe.txt"), line and paragraph
# separators, the zero-width space and the BOM. Joiners that scripts and emoji need are kept.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_ESCAPED_BYTE_FIRST, _ESCAPED_BYTE_LAST = 0xDC80, 0xDCFF  # where surrogateescape puts bytes 0x80-0xff


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if _ESCAPED_BYTE_FIRST <= code <= _ESCAPED_BYTE_LAST:
        code -= 0xDC00  # the undecodable byte itself
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_undecodable(value: str) -> str:
    """`value` as valid text: each byte that was not UTF-8 (a lone surrogate) as `\\xNN`."""
    if value.isascii():
        return value
    return _SURROGATE.sub(_escape, value)


def printable(value: str) -> str:
    """`value` with control characters (and any lone surrogate) shown as `\\xNN` text."""
    if value.isprintable():  # the common case, one C-level scan
        return value
    return _escaped(value)


@lru_cache(maxsize=4096)  # names repeat across rows and redraws
def _escaped(value: str) -> str:
    return _UNPRINTABLE.sub(_escape, value)


def cell_width(text: str) -> int:
    """The terminal cells `text` takes: a wide character (漢, 🙂) two, a combining mark none."""
    return len(text) if text.isascii() else sum(map(_char_cells, text))


@lru_cache(maxsize=4096)
def _char_cells(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf") or char == "\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def fit_cells(text: str, width: int, align: str = "left") -> str:
    """`text` cut (with …) or padded to exactly `width` cells, aligned "left" or "right"."""
    if text.isascii():
        if len(text) > width:
            return text[: width - 1] + "…" if width else ""
        return text.rjust(width) if align == "right" else text.ljust(width)
    if cell_width(text) > width:
        if not width:
            return ""
        text = text[: 4 * width]  # more than fits, combining marks and all
        while cell_width(text) > width - 1:  # a character at a time: a wide one may leave a cell to pad
            text = text[:-1]
        text += "…"
    padding = " " * (width - cell_width(text))
    return padding + text if align == "right" else text + padding
