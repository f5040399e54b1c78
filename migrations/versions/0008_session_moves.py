"""a session counts its moves (sequence: the SEQUENCE its calendar invites carry, and part of its
reminders' dedupe keys) and remembers when it last moved (a registration made before may cancel
for a full refund)

Revision ID: 0008_session_moves
Revises: 0007_payment_receipt
Create Date: 2026-11-30 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_session_moves'
down_revision = '0007_payment_receipt'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sequence', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('moved_at', sa.DateTime(), nullable=True))


def downgrade():
    # Not batch: on SQLite a batch drop rebuilds the table, which the rows referring to
    # sessions forbid; SQLite (3.35+) drops a plain column in place.
    op.drop_column('sessions', 'moved_at')
    op.drop_column('sessions', 'sequence')
