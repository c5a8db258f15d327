"""Business-system integration: systems, write-backs, single-sided cases, approvals, notifiers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 06:19:29.157624
"""
from alembic import op
import sqlalchemy as sa

import gateway.db.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approvals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('applicant', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=256), nullable=True),
    sa.Column('required_role', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('comment', sa.String(length=256), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_applicant'), ['applicant'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_decided_by'), ['decided_by'], unique=False)
        batch_op.create_index('ix_approvals_status', ['status', 'required_role'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_target_id'), ['target_id'], unique=False)

    op.create_table('case_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_events_case_id'), ['case_id'], unique=False)

    op.create_table('his_systems',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('adapter', sa.String(length=40), nullable=False),
    sa.Column('business_types', sa.JSON(), nullable=False),
    sa.Column('config_enc', sa.Text(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('his_writebacks',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('refund_id', sa.String(length=32), nullable=False),
    sa.Column('system_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('bill_type', sa.String(length=40), nullable=False),
    sa.Column('patient_enc', sa.Text(), nullable=False),
    sa.Column('patient_hash', sa.String(length=64), nullable=False),
    sa.Column('patient_name_enc', sa.Text(), nullable=True),
    sa.Column('patient_name_hash', sa.String(length=64), nullable=True),
    sa.Column('patient_phone_enc', sa.Text(), nullable=True),
    sa.Column('visit_no', sa.String(length=64), nullable=True),
    sa.Column('charge_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('his_serial', sa.String(length=64), nullable=True),
    sa.Column('last_error_code', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=256), nullable=True),
    sa.Column('recorded_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'payment_id', 'refund_id', name='uq_his_writebacks_target')
    )
    with op.batch_alter_table('his_writebacks', schema=None) as batch_op:
        batch_op.create_index('ix_his_writebacks_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_writebacks_his_serial'), ['his_serial'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_writebacks_patient_hash'), ['patient_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_writebacks_patient_name_hash'), ['patient_name_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_writebacks_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_writebacks_visit_no'), ['visit_no'], unique=False)

    op.create_table('notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notifier_name', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('audience', sa.String(length=12), nullable=False),
    sa.Column('subject_id', sa.String(length=32), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=256), nullable=True),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index('ix_notices_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_subject_id'), ['subject_id'], unique=False)

    op.create_table('notifier_configs',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('notifier', sa.String(length=40), nullable=False),
    sa.Column('config_enc', sa.Text(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('audiences', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('single_sided_cases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('writeback_id', sa.String(length=32), nullable=True),
    sa.Column('system_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('reason_detail', sa.String(length=256), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('refund_id', sa.String(length=32), nullable=True),
    sa.Column('approval_id', sa.String(length=32), nullable=True),
    sa.Column('next_check_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=256), nullable=True),
    sa.Column('opened_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payment_id')
    )
    with op.batch_alter_table('single_sided_cases', schema=None) as batch_op:
        batch_op.create_index('ix_single_sided_cases_status', ['status', 'opened_at'], unique=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('his_system', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('gave_up_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('his_write_back', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('his_write_back')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('gave_up_at')
        batch_op.drop_column('his_system')

    with op.batch_alter_table('single_sided_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_single_sided_cases_status')

    op.drop_table('single_sided_cases')
    op.drop_table('notifier_configs')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_subject_id'))
        batch_op.drop_index('ix_notices_due')

    op.drop_table('notices')
    with op.batch_alter_table('his_writebacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_his_writebacks_visit_no'))
        batch_op.drop_index(batch_op.f('ix_his_writebacks_payment_id'))
        batch_op.drop_index(batch_op.f('ix_his_writebacks_patient_name_hash'))
        batch_op.drop_index(batch_op.f('ix_his_writebacks_patient_hash'))
        batch_op.drop_index(batch_op.f('ix_his_writebacks_his_serial'))
        batch_op.drop_index('ix_his_writebacks_due')

    op.drop_table('his_writebacks')
    op.drop_table('his_systems')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_events_case_id'))

    op.drop_table('case_events')
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_target_id'))
        batch_op.drop_index('ix_approvals_status')
        batch_op.drop_index(batch_op.f('ix_approvals_decided_by'))
        batch_op.drop_index(batch_op.f('ix_approvals_applicant'))

    op.drop_table('approvals')
