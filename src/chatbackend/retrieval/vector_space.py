"""Where the vectors live, and the guarantee that one model made all of them.

The vector table (SQLite: a sqlite-vec ``vec0`` table keyed by chunk id) or column (PostgreSQL: a
pgvector column with an HNSW index) has the embedder's width, so it is created here at start-up,
not by a migration. ``embedding_space`` records the model and dimension; a different embedder is
refused (``EmbeddingModelChanged``) until ``python -m chatbackend reembed`` has re-embedded every
chunk. With no chunks stored, the space simply follows the configured embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chatbackend.retrieval.models import ChunkRow, EmbeddingSpaceRow
from chatbackend.retrieval.search_sql import vector_blob, vector_literal
from chatbackend.store.types import utcnow

# pg_advisory_xact_lock key for creating the vector column: "chatbackend vector space".
_LOCK_KEY = 7_236_814_551_893_015


class EmbeddingModelChanged(RuntimeError):
    """The stored vectors were made by another model; the message is the one line to print."""


@dataclass(frozen=True, slots=True)
class Space:
    model: str
    dimensions: int


async def ensure_space(session: AsyncSession, wanted: Space) -> None:
    """Create the vector storage for ``wanted`` or check that it is what is stored (one
    transaction, under a lock, so replicas starting together agree)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    stored = await session.get(EmbeddingSpaceRow, 1)
    if stored is not None and Space(stored.model, stored.dimensions) == wanted:
        return
    if stored is not None:
        chunks = await session.scalar(select(func.count()).select_from(ChunkRow))
        if chunks:
            raise EmbeddingModelChanged(
                f"the {chunks} stored chunks were embedded by {stored.model} "
                f"({stored.dimensions} dimensions), not the configured {wanted.model} "
                f"({wanted.dimensions}); run `python -m chatbackend reembed` to re-embed them"
            )
    await recreate(session, wanted)


async def recreate(session: AsyncSession, space: Space) -> None:
    """Drop the vector storage and create it empty for ``space``."""
    dialect = session.get_bind().dialect.name
    for statement in _drop(dialect) + _create(dialect, space.dimensions):
        await session.execute(text(statement))
    await session.execute(delete(EmbeddingSpaceRow))
    session.add(
        EmbeddingSpaceRow(id=1, model=space.model, dimensions=space.dimensions, created_at=utcnow())
    )
    await session.flush()


async def store_vectors(
    session: AsyncSession,
    rows: Sequence[tuple[int, str | None, Sequence[float]]],
) -> None:
    """Store ``(chunk id, owner, vector)`` rows."""
    if not rows:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        statement = text(
            "UPDATE chunks SET embedding = CAST(CAST(:vector AS text) AS vector) WHERE id = :id"
        )
    else:
        statement = text(
            "INSERT INTO chunks_vec (rowid, embedding, owner) VALUES (:id, :vector, :owner)"
        )
    form = vector_literal if postgres else vector_blob
    await session.execute(
        statement,
        [
            {"id": chunk_id, "vector": form(vector), "owner": owner or ""}
            for chunk_id, owner, vector in rows
        ],
    )


def _drop(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            "DROP INDEX IF EXISTS ix_chunks_embedding",
            "ALTER TABLE chunks DROP COLUMN IF EXISTS embedding",
        ]
    return ["DROP TRIGGER IF EXISTS chunks_vec_delete", "DROP TABLE IF EXISTS chunks_vec"]


def _create(dialect: str, dimensions: int) -> list[str]:
    if dialect == "postgresql":
        return [
            f"ALTER TABLE chunks ADD COLUMN embedding vector({int(dimensions)})",
            # HNSW: no training step (unlike IVFFlat), good recall as rows are added.
            "CREATE INDEX ix_chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)",
        ]
    return [
        f"CREATE VIRTUAL TABLE chunks_vec USING vec0(embedding float[{int(dimensions)}] "
        "distance_metric=cosine, owner text)",
        "CREATE TRIGGER chunks_vec_delete AFTER DELETE ON chunks BEGIN "
        "DELETE FROM chunks_vec WHERE rowid = old.id; END",
    ]
