"""Rule regexes run on RE2: matching time is linear in the text, whatever the pattern.

Python's `re` backtracks: `(a+)+$` against 41 `a`s and a `!` takes longer than the age of the
mail, and a rule file is enough to hang the gateway with it. RE2 (the `google-re2` package)
guarantees linear time and refuses, at `check`, what it cannot run that way: backreferences
(`\\1`), lookahead and lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`), possessive and atomic groups.
"""

from __future__ import annotations

from typing import TypeAlias

import re2

Pattern: TypeAlias = re2._Regexp  # the compiled pattern type of google-re2 (no public alias)

# RE2's errors name the offending fragment after a colon: "invalid escape sequence: \1".
_NOT_IN_RE2 = ("invalid escape sequence", "invalid perl operator", "invalid named capture group")
_HINT = " (rules use RE2 syntax: no backreferences, lookahead or lookbehind)"
MAX_MEM = 8 << 20  # RE2's default program size limit; a pattern over it is refused at check


class BadRegex(ValueError):
    """A pattern RE2 refuses; the message says why and where in the pattern."""


def compile_re2(pattern: str, *, dot_nl: bool = False) -> Pattern:
    """Case-insensitive (Sieve compares case-insensitively), Unicode, linear-time."""
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = dot_nl
    options.log_errors = False  # the error goes to `check`'s output, not to RE2's stderr log
    options.max_mem = MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise BadRegex(_describe(pattern, exc)) from None


def _describe(pattern: str, exc: Exception) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    what, _, fragment = text.partition(": ")
    out = text
    at = pattern.find(fragment) if fragment else -1
    if at >= 0 and fragment != pattern:
        out += f" at position {at}"
    if what.startswith(_NOT_IN_RE2):
        out += _HINT
    return out


__all__ = ["BadRegex", "Pattern", "compile_re2"]
