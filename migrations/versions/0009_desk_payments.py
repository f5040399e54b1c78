"""desk payments: a payment says how it was taken (card, cash, check or comp), who took a desk
payment and their note; a desk payment has no Stripe PaymentIntent

Revision ID: 0009_desk_payments
Revises: 0007_payment_receipt
Create Date: 2026-11-30 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_desk_payments'
down_revision = '0008_session_moves'
branch_labels = None
depends_on = None

METHODS = ('card', 'cash', 'check', 'comp')


def _rebuild_payments(change):
    """Run a batch change of payments. SQLite rebuilds the table for it, and dropping the old
    copy would orphan the refunds referring to it (a foreign key error): they are set aside
    while it is rebuilt, with the same ids, and put back."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('CREATE TEMPORARY TABLE refunds_kept AS SELECT * FROM refunds')
        op.execute('DELETE FROM refunds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        change(batch_op)
    if sqlite:
        op.execute('INSERT INTO refunds SELECT * FROM refunds_kept')
        op.execute('DROP TABLE refunds_kept')


def upgrade():
    _rebuild_payments(_add_desk_payments)


def _add_desk_payments(batch_op):
    batch_op.add_column(sa.Column('method', sa.String(length=30), server_default='card', nullable=False))
    batch_op.add_column(sa.Column('taken_by_id', sa.Integer(), nullable=True))
    batch_op.add_column(sa.Column('note', sa.String(length=200), server_default='', nullable=False))
    batch_op.alter_column('stripe_payment_intent_id', existing_type=sa.String(length=255), nullable=True)
    batch_op.create_foreign_key(
        op.f('fk_payments_taken_by_id_users'), 'users', ['taken_by_id'], ['id']
    )
    batch_op.create_check_constraint(op.f('ck_payments_payment_method'), sa.column('method').in_(METHODS))
    batch_op.create_check_constraint(
        op.f('ck_payments_stripe_id_only_for_card'),
        "(method = 'card') = (stripe_payment_intent_id IS NOT NULL)",
    )


def downgrade():
    # Desk payments have no PaymentIntent, which the old schema requires: they go, with their refunds.
    op.execute(
        "DELETE FROM refunds WHERE payment_id IN (SELECT id FROM payments WHERE method <> 'card')"
    )
    op.execute("DELETE FROM payments WHERE method <> 'card'")
    _rebuild_payments(_drop_desk_payments)


def _drop_desk_payments(batch_op):
    batch_op.drop_constraint(op.f('ck_payments_stripe_id_only_for_card'), type_='check')
    batch_op.drop_constraint(op.f('ck_payments_payment_method'), type_='check')
    batch_op.drop_constraint(op.f('fk_payments_taken_by_id_users'), type_='foreignkey')
    batch_op.alter_column('stripe_payment_intent_id', existing_type=sa.String(length=255), nullable=False)
    batch_op.drop_column('note')
    batch_op.drop_column('taken_by_id')
    batch_op.drop_column('method')
