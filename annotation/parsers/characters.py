"""Which characters the platform refuses in text it stores: one rule for imports, the API and the pages.

Pure module (no Django). Refused everywhere: lone surrogates (U+D800–U+DFFF: not Unicode text, UTF-8
cannot encode them, and PostgreSQL would fail on them), NUL and the other C0/C1 control characters
(PostgreSQL text cannot hold NUL; the others are invisible and break CSV, terminals and XLSX), and the
bidirectional embedding/override/isolate controls (U+202A–U+202E, U+2066–U+2069: they make a text
display in another order than it is stored — "Trojan source" — and no dialogue needs them). Tab, line
feed and carriage return are allowed in free text (turns, descriptions) and refused in one-line values
(names, ids, filter values). Any other character — CJK, emoji and every other 3- and 4-byte character —
is allowed.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"
_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff" + _BIDI
_MULTILINE_BAD = re.compile(f"[{_ALWAYS}]")
_ONE_LINE_BAD = re.compile(f"[{_ALWAYS}\t\n\r]")

_NAMES = {
    "\x00": "a NUL character",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
}


def describe(char: str) -> str:
    """A short English name of a refused character, with its code point: ``a NUL character (U+0000)``."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        name = "a lone surrogate"
    elif char in _NAMES:
        name = _NAMES[char]
    elif code < 0x20 or 0x7F <= code <= 0x9F:
        name = "a control character"
    else:
        name = "a bidirectional control character"
    return f"{name} (U+{code:04X})"


def bad_character(text: str, *, multiline: bool = True) -> str | None:
    """The first refused character of ``text`` as ``describe`` names it, with its position; None when clean.

    ``multiline`` allows tab, line feed and carriage return (free text); without it they are refused too.
    """
    match = (_MULTILINE_BAD if multiline else _ONE_LINE_BAD).search(text)
    if match is None:
        return None
    return f"{describe(match.group())} at character {match.start() + 1}"


def clean_for_display(text: str) -> str:
    """``text`` with refused characters shown as ``\\uXXXX`` escapes: safe to echo in an error message."""
    return _MULTILINE_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
