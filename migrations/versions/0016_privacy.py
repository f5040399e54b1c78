"""privacy: when a registration's or waitlist place's personal data was anonymised, the links
emailed to download or erase an address's data (single use, expiring), the clinic's choice of
email subjects (neutral by default), and an index to find waitlist places by address

Revision ID: 0016_privacy
Revises: 0012_audit_subjects
Create Date: 2026-11-30 21:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016_privacy'
down_revision = '0017_consent'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


# Plain (not batch) column changes: on SQLite a batch rebuilds the table, which the rows referring
# to registrations and waitlist entries forbid; SQLite (3.35+) adds and drops a plain column in place.
def upgrade():
    op.add_column('clinics', sa.Column('email_subjects', sa.String(length=20), server_default='neutral', nullable=False))
    op.add_column('registrations', sa.Column('anonymised_at', sa.DateTime(), nullable=True))
    op.add_column('waitlist_entries', sa.Column('anonymised_at', sa.DateTime(), nullable=True))
    op.create_index('ix_waitlist_entries_email_normalized', 'waitlist_entries', ['email_normalized'], unique=False)
    op.create_table(
        'privacy_requests',
        sa.Column('id', BigId, nullable=False),
        sa.Column('action', sa.Enum('export', 'erase', name='privacy_action', native_enum=False,
                                    create_constraint=True, length=30), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('link_email_id', BigId, nullable=True),
        sa.Column('confirmation_email_id', BigId, nullable=True),
        sa.ForeignKeyConstraint(['link_email_id'], ['outbox_emails.id'],
                                name=op.f('fk_privacy_requests_link_email_id_outbox_emails')),
        sa.ForeignKeyConstraint(['confirmation_email_id'], ['outbox_emails.id'],
                                name=op.f('fk_privacy_requests_confirmation_email_id_outbox_emails')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests')),
        sa.UniqueConstraint('nonce', name=op.f('uq_privacy_requests_nonce')),
    )
    op.create_index(op.f('ix_privacy_requests_expires_at'), 'privacy_requests', ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_privacy_requests_expires_at'), table_name='privacy_requests')
    op.drop_table('privacy_requests')
    op.drop_index('ix_waitlist_entries_email_normalized', table_name='waitlist_entries')
    op.drop_column('waitlist_entries', 'anonymised_at')
    op.drop_column('registrations', 'anonymised_at')
    op.drop_column('clinics', 'email_subjects')
