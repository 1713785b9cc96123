"""Tool calls and tool results stored as messages of the conversation (issue 13).

An assistant message that asked for tools keeps them in ``tool_calls`` (``[{id, name,
arguments}]``); a ``tool`` message keeps the id of the call it answers, the tool's name, and its
content or its error. Every message keeps its place in the conversation's one sequence.

Revision ID: 0102_tool_messages
Revises: 0101_documents
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102_tool_messages"
down_revision: str | Sequence[str] | None = "0101_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("tool_calls", "tool_call_id", "tool_name", "tool_error_code", "tool_error_message")


def upgrade() -> None:
    op.add_column("messages", sa.Column("tool_calls", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("tool_call_id", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("tool_name", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("tool_error_code", sa.String(32), nullable=True))
    op.add_column("messages", sa.Column("tool_error_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
