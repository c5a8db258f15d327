"""Medical insurance: configured centres, mixed settlements (the insurance ledger) and their events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 06:53:19.417190
"""
from alembic import op
import sqlalchemy as sa

import gateway.db.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('insurance_centres',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('adapter', sa.String(length=40), nullable=False),
    sa.Column('config_enc', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('insurance_settlement_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('settlement_id', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('insurance_settlement_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_settlement_events_settlement_id'), ['settlement_id'], unique=False)

    op.create_table('insurance_settlements',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('out_settle_no', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('centre_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('business_type', sa.String(length=40), nullable=False),
    sa.Column('notify_url', sa.String(length=512), nullable=True),
    sa.Column('operator', sa.String(length=64), nullable=True),
    sa.Column('request_enc', sa.Text(), nullable=False),
    sa.Column('topup_enc', sa.Text(), nullable=True),
    sa.Column('psn_no', sa.String(length=40), nullable=False),
    sa.Column('insuplc_admdvs', sa.String(length=12), nullable=False),
    sa.Column('mdtrt_id', sa.String(length=40), nullable=False),
    sa.Column('insutype', sa.String(length=8), nullable=False),
    sa.Column('med_type', sa.String(length=8), nullable=False),
    sa.Column('settle_infno', sa.String(length=8), nullable=False),
    sa.Column('settle_msgids', sa.JSON(), nullable=False),
    sa.Column('msgid', sa.String(length=40), nullable=True),
    sa.Column('setl_id', sa.String(length=40), nullable=True),
    sa.Column('setl_time', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('clr_type', sa.String(length=8), nullable=True),
    sa.Column('clr_way', sa.String(length=8), nullable=True),
    sa.Column('setl_optins', sa.String(length=12), nullable=True),
    sa.Column('medins_setl_id', sa.String(length=40), nullable=True),
    sa.Column('psn_name_enc', sa.Text(), nullable=True),
    sa.Column('total', sa.BigInteger(), nullable=True),
    sa.Column('fund_total', sa.BigInteger(), nullable=True),
    sa.Column('funds', sa.JSON(), nullable=False),
    sa.Column('fund_payments', sa.JSON(), nullable=False),
    sa.Column('psn_part', sa.BigInteger(), nullable=True),
    sa.Column('acct_pay', sa.BigInteger(), nullable=True),
    sa.Column('acct_mulaid_pay', sa.BigInteger(), nullable=True),
    sa.Column('wallet_pay', sa.BigInteger(), nullable=True),
    sa.Column('cash_pay', sa.BigInteger(), nullable=True),
    sa.Column('hosp_part', sa.BigInteger(), nullable=True),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=True),
    sa.Column('topup_out_trade_no', sa.String(length=64), nullable=True),
    sa.Column('payment_id', sa.String(length=32), nullable=True),
    sa.Column('topup_deadline', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stop_requested', sa.Boolean(), nullable=False),
    sa.Column('refund_id', sa.String(length=32), nullable=True),
    sa.Column('rev_infno', sa.String(length=8), nullable=True),
    sa.Column('rev_msgids', sa.JSON(), nullable=False),
    sa.Column('rev_msgid', sa.String(length=40), nullable=True),
    sa.Column('rev_setl_id', sa.String(length=40), nullable=True),
    sa.Column('rev_time', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reversal', sa.JSON(), nullable=False),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.String(length=256), nullable=True),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', gateway.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app_id', 'out_settle_no', name='uq_insurance_settlements_out_settle_no')
    )
    with op.batch_alter_table('insurance_settlements', schema=None) as batch_op:
        batch_op.create_index('ix_insurance_settlements_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_settlements_mdtrt_id'), ['mdtrt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_settlements_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_settlements_psn_no'), ['psn_no'], unique=False)
        batch_op.create_index('ix_insurance_settlements_rev_time', ['rev_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_insurance_settlements_setl_id'), ['setl_id'], unique=False)
        batch_op.create_index('ix_insurance_settlements_setl_time', ['setl_time'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('insurance_settlements', schema=None) as batch_op:
        batch_op.drop_index('ix_insurance_settlements_setl_time')
        batch_op.drop_index(batch_op.f('ix_insurance_settlements_setl_id'))
        batch_op.drop_index('ix_insurance_settlements_rev_time')
        batch_op.drop_index(batch_op.f('ix_insurance_settlements_psn_no'))
        batch_op.drop_index(batch_op.f('ix_insurance_settlements_payment_id'))
        batch_op.drop_index(batch_op.f('ix_insurance_settlements_mdtrt_id'))
        batch_op.drop_index('ix_insurance_settlements_due')

    op.drop_table('insurance_settlements')
    with op.batch_alter_table('insurance_settlement_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_settlement_events_settlement_id'))

    op.drop_table('insurance_settlement_events')
    op.drop_table('insurance_centres')
