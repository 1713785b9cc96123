"""Text out of an upload: plain text as it is, Markdown and HTML reduced to text, ``#`` headings.

HTML goes through the standard library's ``html.parser``: it is tolerant of broken markup (it never
raises on bad nesting), needs no compiled dependency, and all we want from a page is its text, its
title and where its headings and blocks are. A DOM library (BeautifulSoup, selectolax) would add a
dependency for querying we do not do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from chatbackend import errors

Kind = Literal["text", "markdown", "html"]

_BY_SUFFIX: dict[str, Kind] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}
_BY_TYPE: dict[str, Kind] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
}
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "ul",
    "ol", "table", "tr", "blockquote", "pre", "br", "hr", "dl", "dt", "dd", "figure",
    "figcaption", "form", "fieldset", "address",
}  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    title: str | None


def kind_of(filename: str | None, content_type: str | None) -> Kind:
    """What an upload is, from its file name, else its declared type; else 415."""
    if filename:
        suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if suffix in _BY_SUFFIX:
            return _BY_SUFFIX[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _BY_TYPE and not (filename and "." in filename):
        return _BY_TYPE[media]
    raise errors.UnsupportedMediaType()


def decode(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), else 415: a binary file is not a text document."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.UnsupportedMediaType(
            "The file is not UTF-8 text; upload .txt, .md or .html in UTF-8."
        ) from None
    if "\x00" in text:
        raise errors.UnsupportedMediaType("The file is binary, not text.")
    return text


def extract(text: str, kind: Kind) -> Extracted:
    if kind == "html":
        return _html(text)
    if kind == "markdown":
        return _markdown(text)
    return Extracted(text=text.strip(), title=None)


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def _markdown(text: str) -> Extracted:
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n"))
    text = _EMPHASIS.sub("", _LINK.sub(r"\1", text))
    lines = [line for line in text.split("\n") if not line.strip().startswith("```")]
    title = next((line.lstrip("#").strip() for line in lines if line.startswith("# ")), None)
    return Extracted(text="\n".join(lines).strip(), title=title)


def _html(text: str) -> Extracted:
    parser = _TextParser()
    parser.feed(text)
    parser.close()
    return Extracted(text=parser.text(), title=parser.title or None)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skipping += 1
        elif tag in _HEADINGS:
            self._parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            self._parts.append("\n\n" if tag in ("p", "div", "section", "article") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _HEADINGS or tag in _BLOCK:
            self._parts.append("\n\n" if tag in _HEADINGS or tag == "p" else "\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()
        elif not self._skipping:
            self._parts.append(data)

    def text(self) -> str:
        joined = "".join(self._parts)
        lines = [" ".join(line.split()) for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
