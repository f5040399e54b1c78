"""report summaries: each session's report facts and every visit with its person's first,
second and last class visit, rebuilt by the worker so a report of ten years reads only its own
rows (issue 16), and the state row saying as of when they equal the live rows

Revision ID: 0022_report_summaries
Revises: 0018_passes_pricing
Create Date: 2026-12-01 01:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022_report_summaries'
down_revision = '0018_passes_pricing'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'report_session_facts',
        sa.Column('session_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('first_of_pool', sa.Boolean(), nullable=False),
        sa.Column('booked_at_start', sa.Integer(), nullable=False),
        sa.Column('confirmed', sa.Integer(), nullable=False),
        sa.Column('attendance_taken', sa.Boolean(), nullable=False),
        sa.Column('present', sa.Integer(), nullable=False),
        sa.Column('late_cancellations', sa.Integer(), nullable=False),
        sa.Column('waitlist_joined', sa.Integer(), nullable=False),
        sa.Column('offers_made', sa.Integer(), nullable=False),
        sa.Column('offers_claimed', sa.Integer(), nullable=False),
        sa.Column('offers_expired', sa.Integer(), nullable=False),
        sa.Column('filled_at', sa.DateTime(), nullable=True),
        sa.Column('card_cents', sa.BigInteger(), nullable=False),
        sa.Column('desk_cents', sa.BigInteger(), nullable=False),
        sa.Column('refund_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('session_id', name=op.f('pk_report_session_facts')),
    )
    op.create_table(
        'report_visits',
        sa.Column('registration_id', BigId, autoincrement=False, nullable=False),
        sa.Column('session_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('person', sa.String(length=300), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('location_id', sa.Integer(), nullable=False),
        sa.Column('teacher_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('second_at', sa.DateTime(), nullable=True),
        sa.Column('last_class_at', sa.DateTime(), nullable=True),
        sa.Column('prev_at', sa.DateTime(), nullable=True),
        sa.Column('prev_workshop_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('registration_id', 'session_id', name=op.f('pk_report_visits')),
    )
    op.create_index(op.f('ix_report_visits_starts_at'), 'report_visits', ['starts_at'])
    op.create_table(
        'report_summary_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.DateTime(), nullable=False),
        sa.Column('fingerprint', sa.String(length=500), nullable=False),
        sa.Column('rebuilt_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_summary_state')),
    )


def downgrade():
    op.drop_table('report_summary_state')
    op.drop_index(op.f('ix_report_visits_starts_at'), table_name='report_visits')
    op.drop_table('report_visits')
    op.drop_table('report_session_facts')
