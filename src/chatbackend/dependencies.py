"""``Annotated`` dependencies: how handlers reach app state, and the override point for tests."""

from __future__ import annotations

from typing import Annotated, TypedDict, cast

from fastapi import Depends, Request

from chatbackend import errors
from chatbackend.access.caller import Caller, get_caller
from chatbackend.access.middleware import IDENTITY_KEY
from chatbackend.access.service import Access
from chatbackend.access.usage import meter_for
from chatbackend.chat import ChatService, Hook
from chatbackend.context.tokens import counter_for
from chatbackend.conversations.leases import LeaseKeeper
from chatbackend.conversations.repository import ConversationRepository
from chatbackend.conversations.service import ConversationService
from chatbackend.conversations.turns import ConversationChat
from chatbackend.retrieval.service import DocumentService
from chatbackend.settings import Settings
from chatbackend.store import Database


class State(TypedDict):
    """What the lifespan builds once per worker and hands to every request."""

    settings: Settings
    service: ChatService
    database: Database
    leases: LeaseKeeper
    access: Access
    documents: DocumentService | None


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
    count = counter_for(service.provider)
    leases = cast(LeaseKeeper, request.state.leases)
    return ConversationChat(ConversationRepository(database), service, leases, count=count)


ConversationChatDep = Annotated[ConversationChat, Depends(get_conversation_chat)]


TokenMeterDep = Annotated[Hook, Depends(get_token_meter)]


DocumentsDep = Annotated[DocumentService, Depends(require_documents)]
OptionalDocumentsDep = Annotated[DocumentService | None, Depends(get_documents)]
