"""balance payments: a payment says what it was for, the seat (registration) or a booking's
balance (paid through the member's payment link after a transfer onto a dearer date)

Revision ID: 0013_balance_payments
Revises: 0012_audit_subjects
Create Date: 2026-11-30 21:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_balance_payments'
down_revision = '0012_audit_subjects'
branch_labels = None
depends_on = None

PURPOSES = ('registration', 'balance')


def _rebuild_payments(change):
    """Run a batch change of payments. SQLite rebuilds the table for it, and dropping the old
    copy would orphan the refunds referring to it (a foreign key error): they are set aside
    while it is rebuilt, with the same ids, and put back (as in 0009_desk_payments)."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('CREATE TEMPORARY TABLE refunds_kept AS SELECT * FROM refunds')
        op.execute('DELETE FROM refunds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        change(batch_op)
    if sqlite:
        op.execute('INSERT INTO refunds SELECT * FROM refunds_kept')
        op.execute('DROP TABLE refunds_kept')


def _add_purpose(batch_op):
    batch_op.add_column(
        sa.Column('purpose', sa.String(length=30), server_default='registration', nullable=False)
    )
    batch_op.create_check_constraint(op.f('ck_payments_payment_purpose'), sa.column('purpose').in_(PURPOSES))


def _drop_purpose(batch_op):
    batch_op.drop_constraint(op.f('ck_payments_payment_purpose'), type_='check')
    batch_op.drop_column('purpose')


def upgrade():
    _rebuild_payments(_add_purpose)


def downgrade():
    # A balance payment becomes a plain payment of its registration (what it was before this).
    _rebuild_payments(_drop_purpose)
