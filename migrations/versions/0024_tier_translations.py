"""tier translations and pass extensions: a sliding-scale tier's name and description in the
other languages members read (staff write them beside the offering's translation), and a pass
ledger row kind "extension" with the expiry it moved the pass to (credits the clinic gave back
onto an expired pass stay usable)

Revision ID: 0024_tier_translations
Revises: 0023_report_rollups
Create Date: 2026-12-01 04:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024_tier_translations'
down_revision = '0023_report_rollups'
branch_labels = None
depends_on = None

KINDS = ('purchase', 'spend', 'return', 'forfeit', 'adjustment', 'expiry', 'refund')
CHECK = 'ck_pass_ledger_ledger_kind'


def _ledger_kinds(kinds):
    """Replace the CHECK on pass_ledger.kind. PostgreSQL changes it in place; SQLite rebuilds
    the table (nothing refers to it), and its partial unique index is made again after."""
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('uq_pass_ledger_booking_kind', table_name='pass_ledger')
        with op.batch_alter_table('pass_ledger', recreate='always') as batch:
            batch.drop_constraint(op.f(CHECK), type_='check')
            batch.create_check_constraint(op.f(CHECK), sa.column('kind').in_(kinds))
        op.create_index(
            'uq_pass_ledger_booking_kind', 'pass_ledger', ['pass_id', 'registration_id', 'kind'],
            unique=True, sqlite_where=sa.text('registration_id IS NOT NULL'),
        )
    else:
        op.drop_constraint(op.f(CHECK), 'pass_ledger', type_='check')
        op.create_check_constraint(op.f(CHECK), 'pass_ledger', sa.column('kind').in_(kinds))


def upgrade():
    op.create_table(
        'price_tier_translations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('price_tier_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=12), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ['price_tier_id'], ['price_tiers.id'],
            name='fk_price_tier_translations_price_tier_id_price_tiers', ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_price_tier_translations'),
        sa.UniqueConstraint('price_tier_id', 'language', name='uq_price_tier_translations_language'),
    )
    op.create_index(
        'ix_price_tier_translations_price_tier_id', 'price_tier_translations', ['price_tier_id'], unique=False
    )
    op.add_column('pass_ledger', sa.Column('new_expires_at', sa.DateTime(), nullable=True))
    _ledger_kinds((*KINDS, 'extension'))


def downgrade():
    # An extension row says only that the expiry moved; the pass keeps its new expiry.
    op.execute("DELETE FROM pass_ledger WHERE kind = 'extension'")
    _ledger_kinds(KINDS)
    op.drop_column('pass_ledger', 'new_expires_at')
    op.drop_index('ix_price_tier_translations_price_tier_id', table_name='price_tier_translations')
    op.drop_table('price_tier_translations')
