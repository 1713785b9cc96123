"""HTTP <-> conversation service: each route maps one request to one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chatbackend.conversations.domain import Changes
from chatbackend.conversations.wire import (
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    ConversationPatch,
    MessageOut,
)
from chatbackend.dependencies import (
    CallerDep,
    ConversationChatDep,
    ConversationsDep,
    SettingsDep,
    TokenMeterDep,
    ToolContextDep,
)
from chatbackend.protocol import ChatRequest, ChatResponse, ErrorResponse
from chatbackend.routes.openapi import CHAT_ERRORS, STREAM_RESPONSES
from chatbackend.store import cursor as keyset
from chatbackend.streaming import complete_answer, stream_answer

Errors = dict[int | str, dict[str, Any]]


def _errors(**described: str) -> Errors:
    return {
        int(status.removeprefix("s")): {"model": ErrorResponse, "description": description}
        for status, description in described.items()
    }


VALIDATION = _errors(s422="The body or a query parameter failed validation (invalid_request)")
BY_ID = _errors(
    s404="No conversation with this id for this caller: not a UUID, unknown, or deleted "
    "(not_found)",
    s422="The body failed validation (invalid_request)",
)

TURN = {
    **_errors(
        s400="Invalid JSON, refused, or the new message alone exceeds the context budget "
        "(context_too_long)",
        s404="No conversation with this id for this caller (not_found)",
        s409="The conversation's previous answer is still streaming (conversation_busy)",
    ),
}

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.post("", status_code=201, responses=VALIDATION)
async def create_conversation(
    body: ConversationCreate, caller: CallerDep, conversations: ConversationsDep
) -> ConversationOut:
    """Start a conversation."""
    created = await conversations.create(caller, title=body.title, metadata=body.metadata)
    return ConversationOut.of(created)


@router.get("", responses=VALIDATION)
async def list_conversations(
    caller: CallerDep,
    conversations: ConversationsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=keyset.PATTERN)] = None,
) -> ConversationPage:
    """The caller's conversations, most recently updated first; pass ``next_cursor`` back as
    ``cursor`` for the next page."""
    page = await conversations.page(caller, limit=limit, cursor=cursor)
    data = [ConversationOut.of(c) for c in page.conversations]
    return ConversationPage(data=data, next_cursor=page.next_cursor)


@router.get("/{conversation_id}", responses=BY_ID, response_model_exclude_unset=True)
async def get_conversation(
    conversation_id: str, caller: CallerDep, conversations: ConversationsDep
) -> ConversationDetail:
    """The conversation and its messages, in order."""
    conversation, messages = await conversations.detail(caller, conversation_id)
    return ConversationDetail(
        **ConversationOut.of(conversation).model_dump(),
        messages=[MessageOut.of(m) for m in messages],
    )


@router.patch("/{conversation_id}", responses=BY_ID)
async def update_conversation(
    conversation_id: str,
    body: ConversationPatch,
    caller: CallerDep,
    conversations: ConversationsDep,
) -> ConversationOut:
    """Change the title and/or the metadata (only the fields sent)."""
    changes = Changes(
        title=body.title,
        metadata=body.metadata,
        set_title="title" in body.model_fields_set,
        set_metadata="metadata" in body.model_fields_set,
    )
    return ConversationOut.of(await conversations.update(caller, conversation_id, changes))


@router.delete("/{conversation_id}", status_code=204, responses=BY_ID)
async def delete_conversation(
    conversation_id: str, caller: CallerDep, conversations: ConversationsDep
) -> Response:
    """Delete the conversation and its messages; its id is then unknown everywhere."""
    await conversations.delete(caller, conversation_id)
    return Response(status_code=204)


@router.post(
    "/{conversation_id}/chat", responses={**CHAT_ERRORS, **TURN}, dependencies=[ToolContextDep]
)
async def conversation_chat(
    conversation_id: str,
    body: ChatRequest,
    caller: CallerDep,
    turns: ConversationChatDep,
    meter: TokenMeterDep,
    request: Request,
) -> ChatResponse:
    """A new turn (one user message) answered with one JSON object; the answer is stored."""
    answer = await turns.start(caller, conversation_id, body, whole=True)
    answer.on_finish(meter)
    return await complete_answer(request, answer, session_state=body.sessionState)


@router.post(
    "/{conversation_id}/chat/stream",
    response_class=Response,
    responses={**STREAM_RESPONSES, **TURN},
    dependencies=[ToolContextDep],
)
async def conversation_chat_stream(
    conversation_id: str,
    body: ChatRequest,
    caller: CallerDep,
    turns: ConversationChatDep,
    settings: SettingsDep,
    meter: TokenMeterDep,
    request: Request,
) -> Response:
    """A new turn streamed as NDJSON or SSE; the final line's context has ``conversation_id``
    and ``message_id``, and the answer is stored when it ends."""
    answer = await turns.start(caller, conversation_id, body)
    answer.on_finish(meter)
    return stream_answer(request, answer, session_state=body.sessionState, settings=settings)
