"""A chat turn on a stored conversation: commit the user message under the conversation's lease,
cut the history to the context budget, and store the answer in the answer's completion hook.

No database connection is held while the model streams: the lease and the user message are
committed before the answer opens, and the hook writes the answer in its own short transaction.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.chat import Answer, ChatService, Outcome
from chatbackend.context.budget import (
    PER_MESSAGE_TOKENS,
    HistoryFit,
    MessageCosts,
    answer_reserve,
    check_new_turn,
    cost,
)
from chatbackend.context.tokens import Count
from chatbackend.conversations.domain import (
    Conversation,
    HistoryPage,
    StoredAnswer,
    ToolRound,
    Turn,
)
from chatbackend.conversations.leases import LeaseKeeper
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.service import parse_id
from chatbackend.protocol import ChatRequest
from chatbackend.providers.base import Message, ToolCall, ToolResult
from chatbackend.retrieval.grounding import ground
from chatbackend.retrieval.service import DocumentService

logger = logging.getLogger("chatbackend.conversations")
# The key of the configured system prompt's cost (CHAT_SYSTEM_PROMPT, fixed for the process).
_CONFIGURED_PROMPT = "configured system prompt"


class ConversationChat:
    def __init__(
        self,
        repository: ConversationRepository,
        chat: ChatService,
        leases: LeaseKeeper,
        *,
        count: Count,
        documents: DocumentService | None = None,
        costs: MessageCosts | None = None,
    ) -> None:
        self._repository = repository
        self._chat = chat
        self._leases = leases
        self._count = count
        self._documents = documents
        # The process's costs of stored messages (app state), so history is counted once.
        self._costs = costs if costs is not None else MessageCosts(count)

    async def start(
        self, caller: Caller, raw_id: str, body: ChatRequest, *, whole: bool = False
    ) -> Answer:
        """The unopened answer to the new turn in ``body``; its user message is committed.

        Everything that can refuse the turn (the id, the body, the context budget, no free
        stream slot, the lease, retrieval asked for without an embedder) refuses it before the
        user message is written, so a refused turn stores nothing: the answer's stream slot is
        reserved before the database is touched. The caller opens or closes the answer on
        every path (the response does), which frees the slot. With
        ``context.overrides.retrieval`` the caller's documents are searched with the newest user
        messages of the conversation (the history included) before the answer opens; the
        sources go on the first line of a stream, or in the ``context`` of a whole answer
        (``whole``).
        """
        conversation_id = parse_id(raw_id)
        new_system, new_user = _new_turn(body)
        generation = self._chat.prepare(body)
        retrieval = body.context.overrides.retrieval
        if retrieval is not None and self._documents is None:
            raise errors.RetrievalUnavailable()
        settings = self._chat.settings
        budget = settings.context_tokens - answer_reserve(
            settings.context_tokens, generation.options.max_tokens
        )
        user = Message(role="user", content=new_user)
        user_tokens = check_new_turn([user], budget=budget, count=self._count)
        costs = self._costs
        plan = _Plan()

        def check(conversation: Conversation) -> None:
            # The system prompt the turn will be sent with fits beside the new message; the
            # history gets what is left.
            plan.system = system = _system(conversation, settings.chat_system_prompt)
            if system is None:
                fixed = 0
            elif system.content == settings.chat_system_prompt:
                fixed = costs.of(_CONFIGURED_PROMPT, system)  # most conversations': once
            else:
                fixed = cost(system, self._count)
            counted = user_tokens + fixed
            needed = check_new_turn([], budget=budget, count=self._count, counted=counted)
            plan.history = HistoryFit(budget - needed)

        # A stored message is (conversation, sequence number): the int's hash is C-fast.
        conversation_key = conversation_id.int

        def take(page: HistoryPage) -> bool:
            fitting = plan.history
            assert fitting is not None
            return fitting.add_page(costs.page(conversation_key, page))

        answer = self._chat.answer(generation)
        answer.reserve_slot()  # Overloaded: refused before anything is written
        try:
            turn = await self._repository.begin_turn(
                caller.key_id,
                conversation_id,
                content=new_user,
                system_prompt=new_system,
                lease=self._leases.lease,
                check=check,
                history=take,
                token_count=user_tokens - PER_MESSAGE_TOKENS if costs.tokenizer else None,
                tokenizer=costs.tokenizer,
            )
        except BaseException:
            await answer.aclose()  # frees the slot; no hook of the turn is registered yet
            raise
        self._leases.hold(turn.token)
        costs.remember((conversation_key, turn.user_seq), user_tokens)
        try:
            assert plan.history is not None
            system = plan.system
            kept = plan.history.messages()
            generation = replace(generation, messages=[*([system] if system else []), *kept, user])
            sources: dict[str, object] = {}
            if retrieval is not None and self._documents is not None:
                grounded = await ground(self._documents, caller, generation, retrieval)
                generation, sources = grounded.generation, grounded.context
        except BaseException:
            await self._finish(turn, None)
            await answer.aclose()
            raise
        answer.request = generation
        (answer.context_final if whole else answer.context_first).update(sources)
        sent = len(generation.messages)

        async def store(outcome: Outcome) -> None:
            # The answer's request has grown by each completed tool round's messages.
            rounds = _rounds(answer.request.messages[sent:], outcome.tools)
            await self._finish(turn, _stored(outcome, rounds))

        answer.on_finish(store)
        answer.context_final.update(
            conversation_id=str(turn.conversation.id), message_id=str(turn.answer_id)
        )
        return answer

    async def _finish(self, turn: Turn, answer: StoredAnswer | None) -> None:
        try:
            stored = await self._repository.finish_turn(turn, answer, costs=self._costs)
        except Exception as exc:
            # Nothing of the answer was written (one transaction): give the lease back alone.
            # Only the type is logged: a database error's text quotes the rows' content.
            logger.error("answer not stored: writing it failed (%s)", type(exc).__qualname__)
            await self._repository.finish_turn(turn, None)
            return
        finally:
            self._leases.release(turn.token)
        if not stored:
            logger.warning("answer not stored: the conversation was deleted or its lease expired")


def _rounds(
    added: Sequence[Message], tools: Sequence[tuple[ToolCall, ToolResult]]
) -> tuple[ToolRound, ...]:
    """The completed tool rounds: each assistant message that asked for tools, with the
    ``(call, result)`` pairs it was answered with (``tools`` holds every round's, in order)."""
    pairs = iter(tools)
    rounds: list[ToolRound] = []
    for message in added:
        if message.tool_calls:
            taken = list(itertools.islice(pairs, len(message.tool_calls)))
            calls = tuple(call for call, _ in taken)
            rounds.append(ToolRound(message.content, calls, tuple(r for _, r in taken)))
    return tuple(rounds)


def _stored(outcome: Outcome, rounds: tuple[ToolRound, ...]) -> StoredAnswer | None:
    """What is kept of an answer: nothing if it never started; all of it when complete; what
    was sent, marked ``incomplete`` (or ``cancelled`` for a disconnect), when cut short. Tool
    rounds are kept when their tools have all returned (a round cut short while its tools run
    is only its text, in the final message): a stored call always has its result."""
    if not outcome.streamed:
        return None
    final = outcome.text[sum(len(r.text) for r in rounds) :]
    if outcome.ending == "complete":
        return StoredAnswer(final, outcome.finish_reason, outcome.usage, outcome.model, rounds)
    reason = "cancelled" if outcome.ending == "cancelled" else "incomplete"
    return StoredAnswer(final, reason, None, outcome.model, rounds)


class _Plan:
    """What a turn's ``check`` learns inside its transaction: the system prompt it is sent
    with, and the history budget that leaves."""

    __slots__ = ("history", "system")

    def __init__(self) -> None:
        self.system: Message | None = None
        self.history: HistoryFit | None = None


def _system(conversation: Conversation, default: str) -> Message | None:
    prompt = conversation.system_prompt or default
    return Message(role="system", content=prompt) if prompt else None


def _new_turn(body: ChatRequest) -> tuple[str | None, str]:
    """``(system prompt or None, user message)``: the only shapes a new turn may take."""
    roles = [m.role for m in body.messages]
    if roles == ["user"]:
        return None, body.messages[0].content
    if roles == ["system", "user"]:
        return body.messages[0].content, body.messages[1].content
    raise errors.InvalidRequest(
        "messages: send only the new turn, one user message (after an optional system message "
        "that replaces the conversation's system prompt)"
    )
