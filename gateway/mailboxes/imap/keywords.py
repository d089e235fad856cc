"""Tag display names → IMAP keywords (RULES.md "Tags").

"CRM sync" → `CRM_sync`: spaces become `_`, IMAP atom-specials and anything outside printable
ASCII are dropped; `tags.keywords` in the config overrides the mapping for a tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# RFC 3501 atom-specials: ( ) { SP CTL % * " \ ]  — plus `[` which would read as a response code.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')


def keyword_for(tag: str, overrides: Mapping[str, str] | None = None) -> str:
    """The IMAP keyword a tag is written as ("" when nothing of the name survives)."""
    if overrides and tag in overrides:
        return overrides[tag]
    out = []
    for ch in tag.strip().replace(" ", "_"):
        if ch in _ATOM_SPECIALS or not (0x21 <= ord(ch) <= 0x7E):
            continue
        out.append(ch)
    kw = "".join(out).lstrip("\\")  # a leading backslash would make it a system flag
    return kw


def keywords_for(tags: Iterable[str], overrides: Mapping[str, str] | None = None) -> list[str]:
    return sorted({k for k in (keyword_for(t, overrides) for t in tags) if k})
