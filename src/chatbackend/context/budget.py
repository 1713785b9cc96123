"""Cut a conversation to the context budget: the system prompt and the new user message always
stay; whole turns are dropped, oldest first. A turn is a user message and everything after it:
the assistant messages that asked for tools, the ``tool`` results, the final answer. So a tool
result is never sent without the tool call it answers, nor a call without its result."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Sequence

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
    fitting = HistoryFit(budget - check_new_turn(fixed, budget=budget, count=count))
    fitting.add_page((message, cost(message, count)) for message in reversed(history))
    return [*([system] if system else []), *fitting.messages(), new]


class HistoryFit:
    """The newest whole turns of a history that fit in ``left`` tokens, the history read
    newest message first (so a stored conversation is read back only as far as the budget goes).

    Read backwards, a turn ends (at its start) with its user message; a history that does not
    begin with one has its leading messages as a turn of their own, kept or dropped whole. The
    first turn that does not fit ends the history sent: older turns are dropped with it.
    """

    def __init__(self, left: int) -> None:
        self.left = left
        self._kept: list[Message] = []  # newest first
        self._turn: list[Message] = []  # the turn being read, newest first
        self._turn_cost = 0
        self._full = False

    def add_page(self, page: Iterable[tuple[Message, int]]) -> bool:
        """The next older messages with their costs, newest first; False once the budget is
        full (a turn did not fit: nothing older is kept, so there is no need to read further).
        It stops reading ``page`` there."""
        if self._full:
            return False
        left, turn, turn_cost, kept = self.left, self._turn, self._turn_cost, self._kept
        try:
            for message, size in page:
                turn.append(message)
                turn_cost += size
                if turn_cost > left:
                    self._full = True
                    return False
                if message.role == "user":
                    kept += turn
                    left -= turn_cost
                    turn.clear()
                    turn_cost = 0
            return True
        finally:
            self.left, self._turn_cost = left, turn_cost

    def messages(self) -> list[Message]:
        """The kept messages, oldest first; call it once the whole history (back to its first
        message) was read, or ``add_page`` said the budget is full."""
        if self._turn and not self._full:
            self._keep_turn()  # the leading messages before the first user message
        return self._kept[::-1]

    def _keep_turn(self) -> None:
        self._kept += self._turn
        self.left -= self._turn_cost
        self._turn.clear()
        self._turn_cost = 0


class MessageCosts:
    """The budget cost of each stored message, counted once per process and kept under the
    message's key (its conversation and sequence number): a stored message never changes, and
    counting the whole history again on every turn is work that grows with the conversation.
    Bounded: past ``size`` messages the least recently used is forgotten."""

    def __init__(self, count: Count, *, tokenizer: str | None = None, size: int = 65_536) -> None:
        self.count = count
        # The name stored with the counts (``tokens.tokenizer_name``); None: neither stored nor
        # read back.
        self.tokenizer = tokenizer
        self._size = size
        self._costs: OrderedDict[Hashable, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._costs)

    def of(self, key: Hashable, message: Message) -> int:
        """``cost(message)``, counted only when ``key`` is not known yet."""
        costs = self._costs
        known = costs.get(key)
        if known is not None:
            costs.move_to_end(key)
            return known
        counted = cost(message, self.count)
        self.remember(key, counted)
        return counted

    def tokens(self, message: Message) -> int:
        """What to store as the message's token count (its cost without the chat format's)."""
        return cost(message, self.count) - PER_MESSAGE_TOKENS

    def page(
        self,
        conversation: Hashable,
        messages: Iterable[tuple[int, Message, int | None, str | None]],
    ) -> Iterator[tuple[Message, int]]:
        """``(message, cost)`` for each ``(seq, message, stored count, its tokenizer)`` of
        ``conversation``, lazily (a fit that stops early counts no further): the stored count
        when it is this tokenizer's, else the message counted once, its cost kept under
        ``(conversation, seq)``."""
        costs, count, size, tokenizer = self._costs, self.count, self._size, self.tokenizer
        for seq, message, stored, counted_by in messages:
            if stored is not None and counted_by == tokenizer and tokenizer is not None:
                yield message, stored + PER_MESSAGE_TOKENS
                continue
            key = (conversation, seq)
            known = costs.get(key)
            if known is None:
                known = costs[key] = cost(message, count)
                if len(costs) > size:
                    costs.popitem(last=False)
            else:
                costs.move_to_end(key)
            yield message, known

    def remember(self, key: Hashable, counted: int) -> None:
        """Note the cost of a message counted elsewhere (a new turn's user message)."""
        costs = self._costs
        costs[key] = counted
        if len(costs) > self._size:
            costs.popitem(last=False)
