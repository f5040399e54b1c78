"""consent translations: a consent version's title and text in another language, each its own
row that never changes once written (a correction is a new version), and the language of the
text each acceptance was given on (existing acceptances were given on the English text)

Revision ID: 0026_consent_translations
Revises: 0024_tier_translations
Create Date: 2026-12-01 07:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026_consent_translations'
down_revision = '0024_tier_translations'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'consent_translations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=12), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=False),
        sa.Column('published_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['version_id'], ['consent_versions.id'],
            name=op.f('fk_consent_translations_version_id_consent_versions'),
        ),
        sa.ForeignKeyConstraint(
            ['published_by_id'], ['users.id'], name=op.f('fk_consent_translations_published_by_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_translations')),
        sa.UniqueConstraint('version_id', 'language', name='uq_consent_translations_version_language'),
    )
    op.create_index(op.f('ix_consent_translations_version_id'), 'consent_translations', ['version_id'])
    op.add_column(
        'consent_acceptances',
        sa.Column('language', sa.String(length=12), server_default='en', nullable=False),
    )


def downgrade():
    op.drop_column('consent_acceptances', 'language')
    op.drop_index(op.f('ix_consent_translations_version_id'), table_name='consent_translations')
    op.drop_table('consent_translations')
