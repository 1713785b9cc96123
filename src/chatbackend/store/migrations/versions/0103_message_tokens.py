"""Each message's token count, stored with it, so a turn does not count its history again.

``token_count`` is what the message's content (and tool calls) count with ``tokenizer``
(``o200k_base``, or the embedded model's own); a turn uses it when its own tokenizer is the
same, and counts the message itself otherwise (rows written before this revision, or by a
server with another model). Both nullable: nothing to backfill.

Revision ID: 0103_message_tokens
Revises: 0102_tool_messages
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103_message_tokens"
down_revision: str | Sequence[str] | None = "0102_tool_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("token_count", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("tokenizer", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("tokenizer")
        batch.drop_column("token_count")
