"""consent: versioned consent documents, the document an offering requires (a table of its
own: no column of offerings changes, so SQLite needs no rebuild of that much-referenced table),
and each registration's acceptances (its own table, keyed by registration)

Revision ID: 0017_consent
Revises: 0012_audit_subjects
Create Date: 2026-11-30 21:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017_consent'
down_revision = '0015_languages'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
METHODS = ('online', 'in_person')


def upgrade():
    op.create_table(
        'consent_documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['created_by_id'], ['users.id'], name=op.f('fk_consent_documents_created_by_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_documents')),
    )
    op.create_table(
        'consent_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=False),
        sa.Column('published_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('number >= 1', name=op.f('ck_consent_versions_version_number_positive')),
        sa.ForeignKeyConstraint(
            ['document_id'], ['consent_documents.id'], name=op.f('fk_consent_versions_document_id_consent_documents')
        ),
        sa.ForeignKeyConstraint(
            ['published_by_id'], ['users.id'], name=op.f('fk_consent_versions_published_by_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_versions')),
        sa.UniqueConstraint('document_id', 'number', name='uq_consent_versions_document_number'),
    )
    op.create_index(op.f('ix_consent_versions_document_id'), 'consent_versions', ['document_id'])
    op.create_table(
        'consent_acceptances',
        sa.Column('id', BigId, nullable=False),
        sa.Column('registration_id', BigId, nullable=False),
        sa.Column('consent_version_id', sa.Integer(), nullable=False),
        sa.Column('accepted_at', sa.DateTime(), nullable=False),
        sa.Column('method', sa.String(length=30), nullable=False),
        sa.Column('handed_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint(sa.column('method').in_(METHODS), name=op.f('ck_consent_acceptances_consent_method')),
        sa.ForeignKeyConstraint(
            ['consent_version_id'], ['consent_versions.id'],
            name=op.f('fk_consent_acceptances_consent_version_id_consent_versions'),
        ),
        sa.ForeignKeyConstraint(
            ['handed_by_id'], ['users.id'], name=op.f('fk_consent_acceptances_handed_by_id_users')
        ),
        sa.ForeignKeyConstraint(
            ['registration_id'], ['registrations.id'],
            name=op.f('fk_consent_acceptances_registration_id_registrations'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_acceptances')),
        sa.UniqueConstraint(
            'registration_id', 'consent_version_id', name='uq_consent_acceptances_registration_version'
        ),
    )
    op.create_index(
        op.f('ix_consent_acceptances_consent_version_id'), 'consent_acceptances', ['consent_version_id']
    )
    op.create_table(
        'offering_consents',
        sa.Column('offering_id', sa.Integer(), nullable=False),
        sa.Column('consent_document_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['consent_document_id'], ['consent_documents.id'],
            name=op.f('fk_offering_consents_consent_document_id_consent_documents'),
        ),
        sa.ForeignKeyConstraint(
            ['offering_id'], ['offerings.id'], name=op.f('fk_offering_consents_offering_id_offerings')
        ),
        sa.PrimaryKeyConstraint('offering_id', name=op.f('pk_offering_consents')),
    )
    op.create_index(
        op.f('ix_offering_consents_consent_document_id'), 'offering_consents', ['consent_document_id']
    )


def downgrade():
    op.drop_index(op.f('ix_offering_consents_consent_document_id'), table_name='offering_consents')
    op.drop_table('offering_consents')
    op.drop_index(op.f('ix_consent_acceptances_consent_version_id'), table_name='consent_acceptances')
    op.drop_table('consent_acceptances')
    op.drop_index(op.f('ix_consent_versions_document_id'), table_name='consent_versions')
    op.drop_table('consent_versions')
    op.drop_table('consent_documents')
