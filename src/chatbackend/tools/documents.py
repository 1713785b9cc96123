"""``search_documents``: the model searches the caller's documents, as ``POST /search`` does.

Offered only when retrieval is on (an embedder is available); the search is the caller's own,
scoped by the request's API key exactly like ``/search``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chatbackend import errors
from chatbackend.tools.context import ToolContext
from chatbackend.tools.registry import ToolError, tool

# The tools that need the documents service: left out when retrieval is off.
RETRIEVAL_TOOLS = ("search_documents",)
MAX_TOP_K = 20


@tool
async def search_documents(
    query: Annotated[str, Field(min_length=1, max_length=2000)],
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] = 5,
    *,
    request: ToolContext,
) -> list[dict[str, Any]]:
    """Search the user's documents for the passages that best match a query; cite a passage
    you use as [id].

    Args:
        query: what to look for: a standalone question or a few keywords.
        top_k: how many passages to return, best first.
    """
    documents = request.documents
    if documents is None:
        raise ToolError("document search is not available")
    try:
        found = await documents.search(request.caller, query, top_k=top_k, mode="hybrid")
    except errors.ChatError as exc:  # the embedder failed: its message is safe to show
        raise ToolError(exc.message) from None
    return [
        {"id": number, "title": hit.title, "source": hit.source, "text": hit.text}
        for number, hit in enumerate(found.hits, 1)
    ]
