"""report rollups: the session figures' parts summed by day, week, month and year, the days before
the start of each session that filled, and per day the counts the people figures are read
from, so a report of ten years reads a few hundred rows, not every session and visit (issue 17)

Revision ID: 0023_report_rollups
Revises: 0022_report_summaries
Create Date: 2026-12-01 04:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023_report_rollups'
down_revision = '0022_report_summaries'
branch_labels = None
depends_on = None

TOTALS = [
    'sessions', 'held', 'cancelled', 'seats_held', 'visits', 'booked_held', 'taken_present',
    'taken_confirmed', 'no_shows', 'late_cancellations', 'waitlist_joined', 'offers_made',
    'offers_claimed', 'offers_expired', 'sessions_filled', 'card_cents', 'desk_cents', 'refund_cents',
]
PEOPLE = ['people', 'first_timers', 'came_back', 'workshop_goers', 'went_on']


def upgrade():
    op.create_table(
        'report_rollups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grain', sa.String(length=5), nullable=False),
        sa.Column('period', sa.Date(), nullable=False),
        sa.Column('week', sa.Date(), nullable=True),
        sa.Column('month', sa.Date(), nullable=True),
        sa.Column('location_id', sa.Integer(), nullable=False),
        sa.Column('offering_id', sa.Integer(), nullable=False),
        sa.Column('teacher_id', sa.Integer(), nullable=True),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in TOTALS],
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rollups')),
    )
    op.create_index('ix_report_rollups_grain_period', 'report_rollups', ['grain', 'period'])
    op.create_table(
        'report_fill_leads',
        sa.Column('session_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('local_day', sa.Date(), nullable=False),
        sa.Column('location_id', sa.Integer(), nullable=False),
        sa.Column('offering_id', sa.Integer(), nullable=False),
        sa.Column('teacher_id', sa.Integer(), nullable=True),
        sa.Column('lead_days', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('session_id', name=op.f('pk_report_fill_leads')),
    )
    op.create_index(op.f('ix_report_fill_leads_local_day'), 'report_fill_leads', ['local_day'])
    op.create_table(
        'report_people_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        *[
            sa.Column(f'{name}_{part}', sa.BigInteger(), nullable=False)
            for name in PEOPLE
            for part in ('before', 'ended')
        ],
        sa.PrimaryKeyConstraint('day', name=op.f('pk_report_people_days')),
    )
    op.create_index(op.f('ix_report_people_days_starts_at'), 'report_people_days', ['starts_at'])


def downgrade():
    op.drop_index(op.f('ix_report_people_days_starts_at'), table_name='report_people_days')
    op.drop_table('report_people_days')
    op.drop_index(op.f('ix_report_fill_leads_local_day'), table_name='report_fill_leads')
    op.drop_table('report_fill_leads')
    op.drop_index('ix_report_rollups_grain_period', table_name='report_rollups')
    op.drop_table('report_rollups')
