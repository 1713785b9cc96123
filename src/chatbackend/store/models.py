"""The ORM models (typed ``Mapped`` columns). Repositories turn rows into domain objects; nothing
outside ``chatbackend.store`` sees these classes.

Every schema change is also an Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chatbackend.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner_updated", "owner_id", "updated_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    system_prompt: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The number of stored messages, which is also the last message's sequence number.
    message_count: Mapped[int] = mapped_column(default=0)
    # The lease of the turn in flight: set by one conditional UPDATE, cleared when its answer is
    # stored, void after ``busy_until`` (so a killed server does not lock the conversation).
    busy_token: Mapped[str | None] = mapped_column(String(36))
    busy_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int]
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    total_tokens: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Function calling: an assistant message's ``[{id, name, arguments}]``; a ``tool``
    # message's call id, tool name and, when the tool failed, its error.
    tool_calls: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    tool_call_id: Mapped[str | None] = mapped_column(Text)
    tool_name: Mapped[str | None] = mapped_column(Text)
    tool_error_code: Mapped[str | None] = mapped_column(String(32))
    tool_error_message: Mapped[str | None] = mapped_column(Text)
    # What the content (and tool calls) count with ``tokenizer``: a turn that counts with the
    # same one does not count the message again.
    token_count: Mapped[int | None]
    tokenizer: Mapped[str | None] = mapped_column(String(64))
