"""Cut a conversation to the context budget: the system prompt and the new user message always
stay; whole turns are dropped, oldest first. A turn is a user message and everything after it:
the assistant messages that asked for tools, the ``tool`` results, the final answer. So a tool
result is never sent without the tool call it answers, nor a call without its result."""

from __future__ import annotations

from collections.abc import Sequence

from chatbackend import errors
from chatbackend.context.tokens import Count
from chatbackend.providers.base import Message

# What the chat format adds around each message (role markers, separators), for any model.
PER_MESSAGE_TOKENS = 4
# Reserved for the answer when the request sets no max_tokens: a quarter, at most 1,024.
DEFAULT_ANSWER_SHARE = 4
DEFAULT_ANSWER_TOKENS = 1024


def answer_reserve(context_tokens: int, max_tokens: int | None) -> int:
    if max_tokens is not None:
        return max_tokens
    return min(DEFAULT_ANSWER_TOKENS, context_tokens // DEFAULT_ANSWER_SHARE)


def cost(message: Message, count: Count) -> int:
    calls = sum(count(c.name) + count(c.arguments) for c in message.tool_calls)
    return count(message.content) + calls + PER_MESSAGE_TOKENS


def check_new_turn(fixed: Sequence[Message], *, budget: int, count: Count, counted: int = 0) -> int:
    """The tokens of the messages that always stay (``fixed`` plus ``counted`` tokens of
    messages counted before); ``ContextTooLong`` if they alone exceed the budget."""
    needed = counted + sum(cost(m, count) for m in fixed)
    if needed > budget:
        raise errors.ContextTooLong(
            f"The new message needs {needed} tokens; the context budget is {budget} "
            "(CHAT_CONTEXT_TOKENS minus the answer's max_tokens)."
        )
    return needed


def fit(
    system: Message | None,
    history: Sequence[Message],
    new: Message,
    *,
    budget: int,
    count: Count,
) -> list[Message]:
    """``system`` + the newest whole turns of ``history`` that fit + ``new``."""
    fixed = [m for m in (system, new) if m is not None]
    left = budget - check_new_turn(fixed, budget=budget, count=count)
    kept: list[Message] = []
    for turn in reversed(_turns(history)):
        size = sum(cost(m, count) for m in turn)
        if size > left:
            break
        kept[:0] = turn
        left -= size
    return [*([system] if system else []), *kept, new]


def _turns(history: Sequence[Message]) -> list[list[Message]]:
    """``history`` in turns; only a user message starts one (a history that does not begin
    with one has its leading messages as a turn of their own, dropped or kept whole)."""
    turns: list[list[Message]] = []
    for message in history:
        if message.role == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns
