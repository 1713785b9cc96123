"""The documents' tables (ORM models on the store's metadata; migration ``0101_documents``).

The vectors are not mapped here: their width depends on the embedder, so ``vector_space.py``
creates their table (SQLite, sqlite-vec) or column (PostgreSQL, pgvector) at start-up, and
``embedding_space`` records which model and dimension made them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatbackend.store.models import Base
from chatbackend.store.types import UTCDateTime

# An integer key on PostgreSQL and SQLite alike (SQLite's rowid, which sqlite-vec and FTS5 use).
ChunkId = BigInteger().with_variant(Integer(), "sqlite")


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_owner_created", "owner_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    chunk_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_document", "document_id", "seq"),
        Index("ix_chunks_content_hash", "content_hash"),
    )

    id: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))


class EmbeddingSpaceRow(Base):
    __tablename__ = "embedding_space"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    dimensions: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
