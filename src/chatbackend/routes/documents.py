"""HTTP <-> ``DocumentService``: /documents and /search. No retrieval logic lives here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from chatbackend.dependencies import CallerDep, DocumentsDep, SettingsDep
from chatbackend.protocol import ErrorResponse, StrictInt
from chatbackend.retrieval.service import Document
from chatbackend.retrieval.upload import DocumentBody, read_document
from chatbackend.store import cursor as keyset
from chatbackend.wirecheck import integral


class DocumentCreated(BaseModel):
    id: uuid.UUID
    title: str
    chunks: int


class DocumentOut(DocumentCreated):
    source: str | None
    metadata: dict[str, Any]
    created_at: datetime


class DocumentPage(BaseModel):
    data: list[DocumentOut]
    next_cursor: str | None


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8000)
    top_k: StrictInt = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"

    _integral = field_validator("top_k", mode="before")(integral)


class SearchHit(BaseModel):
    document_id: uuid.UUID
    chunk_id: int
    title: str
    source: str | None
    text: str
    score: float


class SearchResponse(BaseModel):
    results: list[SearchHit]
    retrieval_ms: float


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        404: "No document with this id (for this caller)",
        413: "The document is larger than DOCUMENTS_MAX_BYTES",
        415: "Not JSON or multipart, or the file is not .txt, .md or .html",
        422: "Validation failed, or the document has no text",
        502: "The embedding provider failed",
        503: "No embedder is installed or configured",
    }
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentBody.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string"},
                        "source": {"type": "string"},
                        "metadata": {"type": "string", "description": "a JSON object"},
                    },
                }
            },
        },
    }
}

router = APIRouter(tags=["documents"])


@router.post(
    "/documents",
    status_code=201,
    responses=_errors(413, 415, 422, 502, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def create_document(
    request: Request, documents: DocumentsDep, caller: CallerDep, settings: SettingsDep
) -> DocumentCreated:
    """Chunk, embed and store a document (JSON, or a multipart .txt/.md/.html file)."""
    new = await read_document(request, max_bytes=settings.documents_max_bytes)
    document = await documents.add(caller, new)
    return DocumentCreated(id=document.id, title=document.title, chunks=document.chunks)


@router.get("/documents", responses=_errors(422))
async def list_documents(
    documents: DocumentsDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=keyset.PATTERN)] = None,
) -> DocumentPage:
    """The caller's documents, newest first."""
    page = await documents.page(caller, limit=limit, cursor=cursor)
    return DocumentPage(data=[_out(d) for d in page.documents], next_cursor=page.next_cursor)


@router.get("/documents/{document_id}", responses=_errors(404, 422))
async def get_document(
    document_id: uuid.UUID, documents: DocumentsDep, caller: CallerDep
) -> DocumentOut:
    return _out(await documents.get(caller, document_id))


@router.delete(
    "/documents/{document_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(404, 422),
)
async def delete_document(
    document_id: uuid.UUID, documents: DocumentsDep, caller: CallerDep
) -> Response:
    """Delete a document and its chunks."""
    await documents.delete(caller, document_id)
    return Response(status_code=204)


@router.post("/search", responses=_errors(422, 502, 503))
async def search(body: SearchRequest, documents: DocumentsDep, caller: CallerDep) -> SearchResponse:
    """The caller's chunks that best match ``query``: hybrid (RRF), vector or text ranking."""
    found = await documents.search(caller, body.query, top_k=body.top_k, mode=body.mode)
    return SearchResponse(
        results=[SearchHit.model_validate(hit, from_attributes=True) for hit in found.hits],
        retrieval_ms=found.retrieval_ms,
    )


def _out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        title=document.title,
        chunks=document.chunks,
        source=document.source,
        metadata=document.metadata,
        created_at=document.created_at,
    )
