"""Token counts: the embedded model's own tokenizer, else tiktoken's ``o200k_base``.

tiktoken downloads its encodings on first use; ours ships in the package
(``o200k_base.tiktoken``, checked against tiktoken's own published SHA-256), so counting works
offline and in locked-down networks.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import tiktoken

ENCODING_FILE = Path(__file__).parent / "o200k_base.tiktoken"
# The hash tiktoken itself verifies this file against (tiktoken_ext.openai_public).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

Count = Callable[[str], int]


@functools.cache
def o200k_base() -> tiktoken.Encoding:
    """The encoding, built from the shipped file (read once per process)."""
    contents = ENCODING_FILE.read_bytes()
    if hashlib.sha256(contents).hexdigest() != O200K_SHA256:
        raise RuntimeError(f"{ENCODING_FILE} is damaged (its SHA-256 does not match)")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in contents.splitlines() if line)
    }
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=O200K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=O200K_SPECIAL,
    )


def tiktoken_count(text: str) -> int:
    return len(o200k_base().encode_ordinary(text))


def counter_for(provider: object) -> Count:
    """The provider's own ``count_tokens`` (the embedded model has one), else ``o200k_base``."""
    own = getattr(provider, "count_tokens", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    return tiktoken_count


def tokenizer_name(provider: object) -> str:
    """The name stored beside a message's token count: whose tokenizer counted it."""
    if counter_for(provider) is tiktoken_count:
        return "o200k_base"
    model = str(getattr(provider, "model", ""))
    return f"{getattr(provider, 'name', 'provider')}:{model}"[:64]


async def load_counter(provider: object) -> Count:
    """``counter_for(provider)``, ready: building ``o200k_base`` takes about a second
    of CPU, which would otherwise stall the worker's event loop at its first conversation turn."""
    count = counter_for(provider)
    if count is tiktoken_count:
        await asyncio.to_thread(o200k_base)
    return count
