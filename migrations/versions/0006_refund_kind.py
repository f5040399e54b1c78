"""a refund says why it was made (its kind), instead of a prefix of its idempotency key

Revision ID: 0006_refund_kind
Revises: 0005_bigint_ids
Create Date: 2026-11-30 16:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_refund_kind'
down_revision = '0005_bigint_ids'
branch_labels = None
depends_on = None

KINDS = ('cancellation', 'clinic_cancellation', 'manual', 'unplaced_payment', 'mirrored')


def upgrade():
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=30), nullable=True))
    # Existing rows: the kind their key was built with (the keys never change).
    op.execute("""
        UPDATE refunds SET kind = CASE
            WHEN idempotency_key LIKE 'unplaced-payment-%' THEN 'unplaced_payment'
            WHEN idempotency_key LIKE 'manual-refund-%' THEN 'manual'
            WHEN idempotency_key LIKE 'cancel-session-%' OR idempotency_key LIKE 'cancel-offering-%'
                THEN 'clinic_cancellation'
            WHEN idempotency_key LIKE 'stripe-%' THEN 'mirrored'
            ELSE 'cancellation'
        END
    """)
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=30), nullable=False)
        batch_op.create_check_constraint(op.f('ck_refunds_refund_kind'), sa.column('kind').in_(KINDS))


def downgrade():
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_refunds_refund_kind'), type_='check')
        batch_op.drop_column('kind')
