"""Token counting (the shipped o200k_base, offline) and cutting history to the budget."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatbackend import errors
from chatbackend.context.budget import (
    PER_MESSAGE_TOKENS,
    MessageCosts,
    answer_reserve,
    cost,
    fit,
)
from chatbackend.context.tokens import counter_for, o200k_base, tiktoken_count
from chatbackend.providers.base import Message, ToolCall

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


def _tool_turn(question: str, result_words: int) -> list[Message]:
    call = ToolCall(id=f"call_{question}", name="lookup", arguments='{"topic": "hello"}')
    return [
        Message("user", question),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", _words(result_words), tool_call_id=call.id),
        Message("assistant", _words(5)),
    ]


def test_a_tool_turn_is_kept_or_dropped_whole() -> None:
    system = Message("system", "Be brief.")
    old, middle = _tool_turn("old", 10), _tool_turn("middle", 200)
    newest = [Message("user", "newest"), Message("assistant", _words(5))]
    new = Message("user", "And now?")
    history = [*old, *middle, *newest]
    everything = fit(system, history, new, budget=10_000, count=tiktoken_count)
    assert everything == [system, *history, new]
    # The middle turn's tool result alone is over what is left: the whole turn goes, and the
    # older one with it (only the newest turns are kept), never the tool message by itself.
    kept = fit(system, history, new, budget=150, count=tiktoken_count)
    assert kept == [system, *newest, new]
    assert not any(m.role == "tool" or m.tool_calls for m in kept)


def test_tool_calls_count_towards_the_budget() -> None:
    call = ToolCall(id="call_1", name="lookup", arguments='{"topic": "' + _words(50) + '"}')
    asked = Message("assistant", "", tool_calls=(call,))
    assert cost(asked, tiktoken_count) >= 50 + PER_MESSAGE_TOKENS
    assert cost(Message("assistant", ""), tiktoken_count) == PER_MESSAGE_TOKENS


def _reference_fit(
    system: Message | None, history: list[Message], new: Message, *, budget: int
) -> list[Message]:
    """The cut as first written: group the history into turns oldest first, then keep the
    newest turns while they fit. ``fit`` reads the history newest first; it must agree."""
    turns: list[list[Message]] = []
    for message in history:
        if message.role == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    fixed = [m for m in (system, new) if m is not None]
    left = budget - sum(cost(m, tiktoken_count) for m in fixed)
    kept: list[Message] = []
    for turn in reversed(turns):
        size = sum(cost(m, tiktoken_count) for m in turn)
        if size > left:
            break
        kept[:0] = turn
        left -= size
    return [*([system] if system else []), *kept, new]


def test_the_newest_first_cut_agrees_with_the_turn_by_turn_one() -> None:
    rng = random.Random(12)
    system, new = Message("system", "Be brief."), Message("user", "And now?")
    for _ in range(300):
        roles = rng.choices(["user", "assistant", "tool"], weights=[3, 3, 1], k=rng.randint(0, 30))
        history = [Message(role, _words(rng.randint(0, 20))) for role in roles]  # type: ignore[arg-type]
        budget = rng.randint(20, 400)
        expected = _reference_fit(system, history, new, budget=budget)
        assert fit(system, history, new, budget=budget, count=tiktoken_count) == expected


def test_message_costs_count_each_message_once_and_stay_bounded() -> None:
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return tiktoken_count(text)

    costs = MessageCosts(count, size=2)
    first, second, third = Message("user", "one"), Message("user", "two two"), Message("user", "x")
    assert costs.of("a", first) == cost(first, tiktoken_count)
    assert costs.of("a", first) == cost(first, tiktoken_count)
    assert counted == ["one"]
    costs.of("b", second)
    costs.of("a", first)  # used last: "b" is the least recently used now
    costs.of("c", third)
    assert len(costs) == 2
    costs.of("a", first)
    costs.of("b", second)  # forgotten, so counted again
    assert counted == ["one", "two two", "x", "two two"]
