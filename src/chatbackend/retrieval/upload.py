"""An upload in, a ``NewDocument`` out: JSON ``{"title", "text", ...}`` or one multipart file."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from chatbackend import errors
from chatbackend.retrieval.extract import decode, extract, kind_of
from chatbackend.retrieval.service import NewDocument

# Text to index: at least one character that is not white space (to Python, ``str.strip``, which
# also strips the ASCII separators; to the regex engines behind the OpenAPI document, ``\s``).
INDEXABLE = r"[^\s\x1c-\x1f]"


class DocumentBody(BaseModel):
    title: str = Field(min_length=1, max_length=1000)
    text: str = Field(pattern=INDEXABLE)
    source: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)


def body_limit(max_bytes: int) -> int:
    """The request-body limit for ``/documents``: the document plus room for JSON escaping or
    multipart framing (the document itself is held to ``max_bytes``)."""
    return max_bytes * 2 + 65_536


async def read_document(request: Request, *, max_bytes: int) -> NewDocument:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        return _from_json(await request.body(), max_bytes=max_bytes)
    if media == "multipart/form-data":
        return await _from_form(request, max_bytes=max_bytes)
    raise errors.UnsupportedMediaType(
        "Send application/json or multipart/form-data with one .txt, .md or .html file."
    )


def _from_json(raw: bytes, *, max_bytes: int) -> NewDocument:
    try:
        body = DocumentBody.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise errors.InvalidJson() from None
    except ValidationError as exc:
        raise errors.InvalidRequest(_describe(exc)) from None
    _check_size(len(body.text.encode()), max_bytes)
    return NewDocument(body.title, body.text, body.source, body.metadata)


async def _from_form(request: Request, *, max_bytes: int) -> NewDocument:
    form = await request.form(max_files=1, max_fields=8)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise errors.InvalidRequest("file: a multipart field named 'file' is required")
        kind = kind_of(upload.filename, upload.content_type)
        raw = await upload.read(max_bytes + 1)
        _check_size(len(raw), max_bytes)
        extracted = extract(decode(raw), kind)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        metadata = _metadata(fields.get("metadata"))
        title = fields.get("title") or extracted.title or upload.filename or "untitled"
        source = fields.get("source") or upload.filename
        return NewDocument(title[:1000], extracted.text, source, metadata)
    finally:
        await form.close()


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidRequest("metadata: must be a JSON object") from None
    if not isinstance(value, dict):
        raise errors.InvalidRequest("metadata: must be a JSON object")
    return value


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise errors.BodyTooLarge(f"The document is larger than the limit of {max_bytes} bytes.")


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
