"""a session version per staff account, so sign-out, a new password and deactivation end every session

Revision ID: 0004_user_session_version
Revises: 0003_refund_worker
Create Date: 2026-11-30 12:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_user_session_version'
down_revision = '0003_refund_worker'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
