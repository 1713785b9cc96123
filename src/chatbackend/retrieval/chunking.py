"""Token-aware chunking: about ``size`` tokens per chunk, ``overlap`` tokens shared with the
previous one, cut at a heading, else a paragraph, else a sentence, where the text allows it.

The text is read as Markdown-ish lines (extraction turns HTML headings into ``#`` lines). It is cut
into sentences, each remembering how strong the boundary before it is; sentences are packed
greedily, and a full chunk is cut back to its last paragraph (or heading) boundary when that keeps
at least half of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

TokenCounter = Callable[[str], int]

SENTENCE, PARAGRAPH, HEADING = 1, 2, 3
_HEADING = re.compile(r"^#{1,6}\s")
# A sentence ends at . ! ? (or their CJK forms) followed by space, or at a CJK full stop.
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)|(?<=[。！？])")


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    tokens: int
    boundary: int  # the strength of the cut before this unit


def chunk_text(text: str, *, size: int, overlap: int, count: TokenCounter) -> list[str]:
    """The chunks of ``text``; empty when it holds nothing but white space."""
    units = list(_units(text, size=size, count=count))
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        filled = sum(u.tokens for u in current)
        early_heading = unit.boundary == HEADING and filled >= size // 3
        if current and (filled + unit.tokens > size or early_heading):
            kept, rest = _cut(current, size)
            chunks.append(kept)
            current = _overlap(kept, overlap) + rest if unit.boundary < HEADING else rest
            while current and sum(u.tokens for u in current) + unit.tokens > size:
                current.pop(0)
        current.append(unit)
    if current:
        chunks.append(current)
    return [_join(chunk) for chunk in chunks]


def _cut(units: list[_Unit], size: int) -> tuple[list[_Unit], list[_Unit]]:
    """Cut back to the last paragraph or heading boundary past half of ``size``."""
    total = 0
    best = len(units)
    for index, unit in enumerate(units):
        if index and unit.boundary >= PARAGRAPH and total >= size // 2:
            best = index
        total += unit.tokens
    return units[:best], units[best:]


def _overlap(units: list[_Unit], overlap: int) -> list[_Unit]:
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if unit.boundary == HEADING or total + unit.tokens > overlap:
            break
        tail.insert(0, unit)
        total += unit.tokens
    if tail:
        tail[0] = _Unit(tail[0].text, tail[0].tokens, SENTENCE)
    return tail


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index and _HEADING.match(units[index - 1].text):
            parts.append("\n")
        elif index:
            parts.append("\n\n" if unit.boundary >= PARAGRAPH else " ")
        parts.append(unit.text)
    return "".join(parts)


def _units(text: str, *, size: int, count: TokenCounter) -> list[_Unit]:
    units: list[_Unit] = []
    for boundary, paragraph in _paragraphs(text):
        for index, sentence in enumerate(_SENTENCE_END.split(paragraph)):
            sentence = sentence.strip()
            if not sentence:
                continue
            strength = boundary if index == 0 else SENTENCE
            for piece_index, piece in enumerate(_fit(sentence, size=size, count=count)):
                units.append(_Unit(piece, count(piece), strength if piece_index == 0 else 0))
    return units


def _paragraphs(text: str) -> list[tuple[int, str]]:
    """Paragraphs (separated by blank lines or headings), each with the boundary before it."""
    found: list[tuple[int, str]] = []
    lines: list[str] = []
    boundary = PARAGRAPH

    def flush() -> None:
        if lines:
            found.append((boundary, " ".join(lines)))
            lines.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            flush()
            boundary = PARAGRAPH
        elif _HEADING.match(line):
            flush()
            found.append((HEADING, line))
            boundary = PARAGRAPH
        else:
            if not lines and found and found[-1][0] == HEADING and boundary == PARAGRAPH:
                boundary = SENTENCE  # a heading's first paragraph stays with it
            lines.append(line)
    flush()
    return found


def _fit(sentence: str, *, size: int, count: TokenCounter) -> list[str]:
    """``sentence``, or its words cut into pieces of at most ``size`` tokens when it is longer."""
    if count(sentence) <= size:
        return [sentence]
    pieces: list[str] = []
    words: list[str] = []
    for word in _words(sentence, size=size, count=count):
        if words and count(" ".join([*words, word])) > size:
            pieces.append(" ".join(words))
            words = []
        words.append(word)
    if words:
        pieces.append(" ".join(words))
    return pieces


def _words(sentence: str, *, size: int, count: TokenCounter) -> list[str]:
    """The words of ``sentence``; one longer than ``size`` tokens (text written without spaces,
    such as Chinese or Japanese) is cut into runs of characters that fit."""
    words: list[str] = []
    for word in sentence.split():
        tokens = count(word)
        if tokens <= size:
            words.append(word)
            continue
        step = max(1, len(word) * size // (tokens + 1))
        words.extend(word[i : i + step] for i in range(0, len(word), step))
    return words
