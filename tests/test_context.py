"""Token counting (the shipped o200k_base, offline) and cutting history to the budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatbackend import errors
from chatbackend.context.budget import PER_MESSAGE_TOKENS, answer_reserve, fit
from chatbackend.context.tokens import counter_for, o200k_base, tiktoken_count
from chatbackend.providers.base import Message

_OFFLINE = textwrap.dedent(
    """
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    from chatbackend.context.tokens import o200k_base
    print(o200k_base().encode_ordinary("hello world"))
    """
)


def test_the_encoding_loads_with_the_network_blocked_and_no_cache(tmp_path: Path) -> None:
    empty_cache = tmp_path / "tiktoken-cache"
    empty_cache.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE],
        env={"TIKTOKEN_CACHE_DIR": str(empty_cache), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(o200k_base().encode_ordinary("hello world"))
    assert list(empty_cache.iterdir()) == []


def test_o200k_base_matches_tiktokens_own_token_ids() -> None:
    encoding = o200k_base()
    assert encoding.n_vocab == 200019
    assert encoding.encode_ordinary("hello world") == [24912, 2375]
    assert tiktoken_count("hello world") == 2


def test_cloud_providers_count_with_o200k_base() -> None:
    assert counter_for(object()) is tiktoken_count


def _words(count: int) -> str:
    return " ".join(["hello"] * count)  # one o200k token per word


def test_truncation_keeps_the_newest_whole_turns_within_budget() -> None:
    system = Message("system", "Be brief.")
    history = [
        Message("user", _words(10)),
        Message("assistant", _words(10)),
        Message("user", _words(10)),
        Message("assistant", _words(10)),
        Message("assistant", _words(5)),
        Message("user", _words(10)),
        Message("assistant", _words(10)),
    ]
    new = Message("user", "And now?")
    fixed = tiktoken_count(system.content) + tiktoken_count(new.content) + 2 * PER_MESSAGE_TOKENS
    turn = 2 * (10 + PER_MESSAGE_TOKENS)
    # Room for the newest turn and the middle one (three messages) but not the oldest.
    budget = fixed + turn + turn + 5 + PER_MESSAGE_TOKENS + 3
    kept = fit(system, history, new, budget=budget, count=tiktoken_count)
    assert kept == [system, *history[2:], new]
    total = sum(tiktoken_count(m.content) + PER_MESSAGE_TOKENS for m in kept)
    assert total <= budget
    # One token less and the middle turn (a whole turn, never half of it) goes too.
    tighter = fit(system, history, new, budget=budget - 4, count=tiktoken_count)
    assert tighter == [system, *history[5:], new]


def test_a_new_message_alone_over_the_budget_is_context_too_long() -> None:
    with pytest.raises(errors.ContextTooLong):
        fit(None, [], Message("user", _words(100)), budget=50, count=tiktoken_count)


def test_the_answer_reserve_is_max_tokens_or_a_quarter_up_to_1024() -> None:
    assert answer_reserve(16_000, 200) == 200
    assert answer_reserve(16_000, None) == 1024
    assert answer_reserve(2048, None) == 512
