"""languages: the language a registration, a waitlist place and an email to an address were
made in (their emails are written in it), and offerings' own text in other languages

Revision ID: 0015_languages
Revises: 0012_audit_subjects
Create Date: 2026-11-30 21:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015_languages'
down_revision = '0013_balance_payments'
branch_labels = None
depends_on = None

TABLES = ('registrations', 'waitlist_entries', 'outbox_emails')


def upgrade():
    # Everything made before spoke English: the server default says so for existing rows.
    # (A plain ADD/DROP COLUMN, which SQLite does in place: a batch copy of registrations
    # would trip the foreign keys that point at it.)
    for table in TABLES:
        op.add_column(table, sa.Column('language', sa.String(length=12), nullable=False, server_default='en'))
    op.create_table(
        'offering_translations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('offering_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=12), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('summary', sa.String(length=400), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('what_to_bring', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['offering_id'], ['offerings.id'],
            name='fk_offering_translations_offering_id_offerings', ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_offering_translations'),
        sa.UniqueConstraint('offering_id', 'language', name='uq_offering_translations_language'),
    )
    with op.batch_alter_table('offering_translations') as batch:
        batch.create_index('ix_offering_translations_offering_id', ['offering_id'], unique=False)


def downgrade():
    with op.batch_alter_table('offering_translations') as batch:
        batch.drop_index('ix_offering_translations_offering_id')
    op.drop_table('offering_translations')
    for table in reversed(TABLES):
        op.drop_column(table, 'language')
