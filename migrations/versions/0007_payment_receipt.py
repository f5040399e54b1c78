"""a payment remembers what its receipt names (the card's brand and last 4 digits, when it was
paid); a registration remembers which browser made it (registering again there resumes it)

Revision ID: 0007_payment_receipt
Revises: 0006_refund_kind
Create Date: 2026-11-30 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_payment_receipt'
down_revision = '0006_refund_kind'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_brand', sa.String(length=20), server_default='', nullable=False))
        batch_op.add_column(sa.Column('card_last4', sa.String(length=4), server_default='', nullable=False))
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser_key', sa.String(length=64), server_default='', nullable=False))
    # Payments made before: the last change to a succeeded one is when we learned it succeeded.
    op.execute("UPDATE payments SET paid_at = updated_at WHERE status = 'succeeded'")


def downgrade():
    # Not batch: on SQLite a batch drop rebuilds the table, which the rows referring to
    # registrations and payments forbid; SQLite (3.35+) drops a plain column in place.
    op.drop_column('registrations', 'browser_key')
    op.drop_column('payments', 'paid_at')
    op.drop_column('payments', 'card_last4')
    op.drop_column('payments', 'card_brand')
