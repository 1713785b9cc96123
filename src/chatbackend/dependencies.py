"""``Annotated`` dependencies: how handlers reach app state, and the override point for tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypedDict, cast

from fastapi import Depends, Request

from chatbackend import errors
from chatbackend.access.caller import Caller, get_caller
from chatbackend.access.middleware import IDENTITY_KEY
from chatbackend.access.service import Access, Identity
from chatbackend.access.usage import meter_for
from chatbackend.batch.service import BatchRunner, CallerSlots
from chatbackend.cache import ResponseCache
from chatbackend.chat import ChatService, Hook
from chatbackend.context.budget import MessageCosts
from chatbackend.conversations.leases import LeaseKeeper
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.service import ConversationService
from chatbackend.conversations.turns import ConversationChat
from chatbackend.retrieval.service import DocumentService
from chatbackend.settings import Settings
from chatbackend.store import Database
from chatbackend.tools.context import ToolContext, bind_tool_context


class State(TypedDict):
    """What the lifespan builds once per worker and hands to every request."""

    settings: Settings
    service: ChatService
    database: Database
    leases: LeaseKeeper
    # Token costs of stored messages, counted once per process (conversation turns).
    message_costs: MessageCosts
    access: Access
    documents: DocumentService | None
    cache: ResponseCache | None
    batch_slots: CallerSlots


async def get_service(request: Request) -> ChatService:
    """``async``: FastAPI runs a plain ``def`` dependency in a thread, twice per request."""
    return cast(ChatService, request.state.service)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


async def get_database(request: Request) -> Database:
    return cast(Database, request.state.database)


async def get_token_meter(request: Request) -> Hook:
    """The ``on_finish`` hook that counts an answer's tokens against the request's caller."""
    return meter_for(cast(Access, request.state.access), request.scope.get(IDENTITY_KEY))


async def get_cache(request: Request) -> ResponseCache | None:
    """``None`` while the response cache is off (``CHAT_CACHE_TTL_SECONDS`` unset)."""
    return cast(ResponseCache | None, request.state.cache)


async def get_documents(request: Request) -> DocumentService | None:
    """``None`` when no embedder is available; the documents routes then answer 503."""
    return cast(DocumentService | None, request.state.documents)


async def require_documents(request: Request) -> DocumentService:
    documents = await get_documents(request)
    if documents is None:
        raise errors.RetrievalUnavailable()
    return documents


ServiceDep = Annotated[ChatService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_conversations(database: DatabaseDep) -> ConversationService:
    return ConversationService(ConversationRepository(database))


ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]


async def get_conversation_chat(
    request: Request, database: DatabaseDep, service: ServiceDep
) -> ConversationChat:
    state = request.state
    costs = cast(MessageCosts, state.message_costs)
    return ConversationChat(
        ConversationRepository(database),
        service,
        cast(LeaseKeeper, state.leases),
        count=costs.count,
        documents=cast(DocumentService | None, state.documents),
        costs=costs,
    )


ConversationChatDep = Annotated[ConversationChat, Depends(get_conversation_chat)]


TokenMeterDep = Annotated[Hook, Depends(get_token_meter)]


DocumentsDep = Annotated[DocumentService, Depends(require_documents)]
OptionalDocumentsDep = Annotated[DocumentService | None, Depends(get_documents)]
CacheDep = Annotated[ResponseCache | None, Depends(get_cache)]


async def get_batch_runner(
    request: Request,
    service: ServiceDep,
    documents: OptionalDocumentsDep,
    caller: CallerDep,
    meter: TokenMeterDep,
    cache: CacheDep,
) -> BatchRunner:
    state = request.state
    identity = request.scope.get(IDENTITY_KEY)
    bind_tool_context(ToolContext(caller, documents))
    return BatchRunner(
        service=service,
        documents=documents,
        cache=cache,
        access=cast(Access, state.access),
        identity=identity if isinstance(identity, Identity) else None,
        caller=caller,
        meter=meter,
        slots=cast(CallerSlots, state.batch_slots),
    )


BatchRunnerDep = Annotated[BatchRunner, Depends(get_batch_runner)]


@dataclass(frozen=True, slots=True)
class ChatRoute:
    """What ``/chat`` and ``/chat/stream`` need, resolved by one dependency: these are the
    hottest routes, and FastAPI spends a few microseconds on every dependency it solves."""

    service: ChatService
    settings: Settings
    documents: DocumentService | None
    caller: Caller
    meter: Hook
    cache: ResponseCache | None


async def get_chat_route(request: Request, caller: CallerDep) -> ChatRoute:
    """Also binds the tools' request context, as ``bind_tools`` does for the other routes."""
    state = request.state
    documents = cast(DocumentService | None, state.documents)
    bind_tool_context(ToolContext(caller, documents))
    return ChatRoute(
        service=cast(ChatService, state.service),
        settings=cast(Settings, state.settings),
        documents=documents,
        caller=caller,
        meter=meter_for(cast(Access, state.access), request.scope.get(IDENTITY_KEY)),
        cache=cast(ResponseCache | None, state.cache),
    )


ChatRouteDep = Annotated[ChatRoute, Depends(get_chat_route)]


async def bind_tools(caller: CallerDep, documents: OptionalDocumentsDep) -> None:
    """The caller and the documents service, for the tools this request's answer runs
    (``search_documents``): a route dependency of every chat route."""
    bind_tool_context(ToolContext(caller, documents))


ToolContextDep = Depends(bind_tools)
