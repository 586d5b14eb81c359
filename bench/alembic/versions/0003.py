"""Revision 0003: Migrations/0003_*.up.sql (rendered by render.py)."""
import os
import sys

from alembic import op

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import render  # noqa: E402

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    render.run(op, revision)


def downgrade():
    raise NotImplementedError("the bench only upgrades")
