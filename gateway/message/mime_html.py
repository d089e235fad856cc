"""HTML bodies: the text of a mail that has no text part, and the sanitised HTML kept.

Both come from one libxml2 parse (lxml), which is linear in its input. The stdlib
`html.parser` is not: `"<a b="`, `"</"` or `"<?"` repeated cost minutes of CPU for a few
hundred KB. nh3 (html5ever + ammonia) sanitises, but is quadratic in the length of a text
run or an attribute value full of `&`, and in nesting depth; so it is given the tree as
libxml2 rebuilt it (nesting capped by libxml2 at 256 levels), with long text runs split by
empty `<span>`s and over-long attribute values dropped.

The work is bounded: only the first `HTML_MAX` characters of an HTML body are read and at
most `TEXT_MAX` characters of text are kept; `HtmlBody.truncated` says when either cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.etree as etree
import nh3

HTML_MAX = 1024 * 1024  # characters of HTML read (a 10 MB report keeps its first 1 MB)
TEXT_MAX = 512 * 1024  # characters of text kept from it
_RUN_MAX = 2048  # longest text run handed to nh3 in one piece
_ATTR_MAX = 8192  # longer attribute values (URLs, styles) are junk: dropped

_SKIP = frozenset({"script", "style", "head", "title", "noscript", "template"})
_BLOCK = frozenset(
    {
        "p",
        "div",
        "br",
        "tr",
        "li",
        "ul",
        "ol",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "hr",
        "section",
        "article",
        "header",
        "footer",
    }
)
_CELL = frozenset({"td", "th"})
_VOID = frozenset({"br", "hr"})
_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}  # inline images keep their cid: links
_DROP_WITH_CONTENT = nh3.CLEAN_CONTENT_TAGS | {"title", "head"}  # not just the tags: their text too
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class HtmlBody:
    text: str  # plain text of the HTML ("" when not asked for)
    html: str  # sanitised HTML
    truncated: bool  # the HTML was longer than HTML_MAX or its text longer than TEXT_MAX


def convert(html: str, *, want_text: bool = True) -> HtmlBody:
    """Text and sanitised HTML of an HTML body; never raises for any input."""
    if not html.strip():
        return HtmlBody("", "", False)
    truncated = len(html) > HTML_MAX
    root = _parse(html[:HTML_MAX])
    if root is None:
        return HtmlBody("", "", truncated)
    text = ""
    if want_text:
        text, cut = _text(root)
        truncated = truncated or cut
    return HtmlBody(text, _sanitise(root), truncated)


def html_to_text(html: str) -> str:
    return convert(html).text


def _parse(html: str):
    # NULs end libxml2's input early; they are never text a person wrote
    html = html.replace("\x00", "")
    parser = etree.HTMLParser(
        recover=True,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        remove_blank_text=False,
        compact=True,
        default_doctype=False,
    )  # type: ignore[call-arg]  # lxml ≥ 4.8 has it; lxml-stubs 0.5 not
    try:
        parser.feed(html)
        return parser.close()
    except (etree.Error, ValueError):  # "Document is empty" and kin: nothing to keep
        return None


def _text(root) -> tuple[str, bool]:
    out: list[str] = []
    size = 0
    skip = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _SKIP:
                skip += 1
            elif not skip:
                if tag in _BLOCK:
                    out.append("\n")
                elif tag in _CELL:
                    out.append(" ")
                if el.text:
                    out.append(el.text)
                    size += len(el.text)
        else:
            if tag in _SKIP:
                skip -= 1
            elif not skip and tag in _BLOCK and tag not in _VOID:  # <br>: one line break, not two
                out.append("\n")
            if not skip and el.tail:
                out.append(el.tail)
                size += len(el.tail)
        if size > TEXT_MAX:
            break
    raw = "".join(out)
    cut = size > TEXT_MAX
    lines = (_SPACES.sub(" ", line).strip() for line in raw.split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text[:TEXT_MAX], cut


def _sanitise(root) -> str:
    for el in list(root.iter()):  # a list: the loop inserts elements
        for name, value in list(el.attrib.items()):
            if len(value) > _ATTR_MAX:
                del el.attrib[name]
        if el.text and len(el.text) > _RUN_MAX:
            text, el.text = el.text, el.text[:_RUN_MAX]
            for at, piece in enumerate(_pieces(text[_RUN_MAX:])):
                span = etree.Element("span")
                span.tail = piece
                el.insert(at, span)
        if el.tail and len(el.tail) > _RUN_MAX and el.getparent() is not None:
            tail, el.tail = el.tail, el.tail[:_RUN_MAX]
            parent, at = el.getparent(), el.getparent().index(el)
            for n, piece in enumerate(_pieces(tail[_RUN_MAX:]), 1):
                span = etree.Element("span")
                span.tail = piece
                parent.insert(at + n, span)
    normal = etree.tostring(root, method="html", encoding="unicode")
    return nh3.clean(normal, url_schemes=_URL_SCHEMES, clean_content_tags=_DROP_WITH_CONTENT)


def _pieces(text: str) -> list[str]:
    return [text[i : i + _RUN_MAX] for i in range(0, len(text), _RUN_MAX)]
