"""the audit trail's offering and registration as indexed columns (copied out of the JSON
details), and an index on its target: the offering filter and a registration's history read
these instead of every row's details

Revision ID: 0012_audit_subjects
Revises: 0011_search_indexes
Create Date: 2026-11-30 19:15:00.000000

"""
import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012_audit_subjects'
down_revision = '0011_search_indexes'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
BATCH = 5000


def _id_in(details, key):
    value = details.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _backfill(bind):
    """Entries recorded before: their offering from the details or from what they are about
    (as the trail's offering filter found them), their registration from the details."""
    entries = sa.table(
        'audit_entries',
        sa.column('id'), sa.column('target_type'), sa.column('target_id'), sa.column('details'),
        sa.column('offering_id'), sa.column('registration_id'),
    )
    offering_of = {
        kind: dict(bind.execute(sa.text(f'SELECT id, offering_id FROM {table}')).all())
        for kind, table in (('registration', 'registrations'), ('session', 'sessions'), ('seat_pool', 'seat_pools'))
    }
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(entries.c.id, entries.c.target_type, entries.c.target_id, entries.c.details)
            .where(entries.c.id > last_id)
            .order_by(entries.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for entry_id, target_type, target_id, details in rows:
            if isinstance(details, str):  # (SQLite hands JSON back as text here)
                details = json.loads(details or '{}')
            details = details if isinstance(details, dict) else {}
            registration_id = (
                _id_in(details, 'new_registration_id')
                or _id_in(details, 'registration_id')
                or (target_id if target_type == 'registration' else None)
            )
            offering_id = _id_in(details, 'offering_id') or (
                target_id if target_type == 'offering' else offering_of.get(target_type, {}).get(target_id)
            )
            if offering_id or registration_id:
                updates.append({'entry_id': entry_id, 'o': offering_id, 'r': registration_id})
        if updates:
            bind.execute(
                entries.update()
                .where(entries.c.id == sa.bindparam('entry_id'))
                .values(offering_id=sa.bindparam('o'), registration_id=sa.bindparam('r')),
                updates,
            )
        last_id = rows[-1][0]


def upgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offering_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('registration_id', BigId, nullable=True))
    _backfill(op.get_bind())
    op.create_index('ix_audit_entries_target', 'audit_entries', ['target_type', 'target_id'])
    op.create_index('ix_audit_entries_offering_id_id', 'audit_entries', ['offering_id', 'id'])
    op.create_index('ix_audit_entries_registration_id_id', 'audit_entries', ['registration_id', 'id'])


def downgrade():
    op.drop_index('ix_audit_entries_registration_id_id', table_name='audit_entries')
    op.drop_index('ix_audit_entries_offering_id_id', table_name='audit_entries')
    op.drop_index('ix_audit_entries_target', table_name='audit_entries')
    # Not batch: SQLite (3.35+) drops a plain column in place.
    op.drop_column('audit_entries', 'registration_id')
    op.drop_column('audit_entries', 'offering_id')
