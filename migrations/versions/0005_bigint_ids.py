"""64-bit ids for the tables that grow with every person and email; outbox claim leases

Revision ID: 0005_bigint_ids
Revises: 0004_user_session_version
Create Date: 2026-11-30 12:10:00

PostgreSQL only for the ids: SQLite's INTEGER PRIMARY KEY is already 64-bit. A serial's
sequence has a type of its own (integer, max 2,147,483,647), so it is widened too.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_bigint_ids'
down_revision = '0004_user_session_version'
branch_labels = None
depends_on = None

# Keys with a sequence, then the columns that refer to them (or hold any table's id).
KEYS = ['registrations', 'waitlist_entries', 'attendance', 'outbox_emails', 'webhook_events', 'audit_entries']
REFERENCES = [
    ('waitlist_entries', 'registration_id', True),
    ('attendance', 'registration_id', False),
    ('payments', 'registration_id', False),
    ('outbox_emails', 'registration_id', True),
    ('outbox_emails', 'waitlist_entry_id', True),
    ('audit_entries', 'target_id', False),
]


def _retype(old, new, sequence_type):
    for table, column, nullable in REFERENCES:
        op.alter_column(table, column, existing_type=old, type_=new, existing_nullable=nullable)
    for table in KEYS:
        op.alter_column(table, 'id', existing_type=old, type_=new, existing_nullable=False)
        sequence = op.get_bind().scalar(sa.text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))
        op.execute(f'ALTER SEQUENCE {sequence} AS {sequence_type}')


def upgrade():
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        _retype(sa.Integer(), sa.BigInteger(), 'bigint')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _retype(sa.BigInteger(), sa.Integer(), 'integer')
    with op.batch_alter_table('outbox_emails', schema=None) as batch_op:
        batch_op.drop_column('lease_expires_at')
