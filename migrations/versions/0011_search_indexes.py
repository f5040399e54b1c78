"""indexes for the staff pages at a clinic's ten-year size: trigram indexes for the
registration search on PostgreSQL, and registrations by status, newest first

Revision ID: 0011_search_indexes
Revises: 0007_payment_receipt
Create Date: 2026-11-30 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_search_indexes'
down_revision = '0010_walk_ins'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_registrations_status_id', 'registrations', ['status', 'id'])
    if op.get_bind().dialect.name == 'postgresql':
        # pg_trgm ships with PostgreSQL and is a trusted extension (13+): a database owner
        # may create it. Its GIN indexes serve ILIKE/LIKE '%part%' (the staff search).
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.create_index(
            'ix_registrations_name_trgm',
            'registrations',
            ['name'],
            postgresql_using='gin',
            postgresql_ops={'name': 'gin_trgm_ops'},
        )
        op.create_index(
            'ix_registrations_email_trgm',
            'registrations',
            ['email_normalized'],
            postgresql_using='gin',
            postgresql_ops={'email_normalized': 'gin_trgm_ops'},
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_registrations_email_trgm', table_name='registrations')
        op.drop_index('ix_registrations_name_trgm', table_name='registrations')
        # (the pg_trgm extension stays: other things may use it, and it holds no data)
    op.drop_index('ix_registrations_status_id', table_name='registrations')
