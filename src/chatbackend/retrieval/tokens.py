"""Token counts for chunking text that a remote embedder will embed."""

from __future__ import annotations

import re

# BPE vocabularies (o200k_base, cl100k_base) average about four characters of English per token
# and give punctuation its own; this counts the same way without an encoding table.
_PIECE = re.compile(r"\w{1,4}|[^\w\s]")


def count_o200k(text: str) -> int:
    """About as many tokens as o200k_base would make of ``text``."""
    return len(_PIECE.findall(text))
