"""Insurance fee lines as uploaded, with the centre's verdict: the discharge fee list.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 07:18:38.150702
"""
from alembic import op
import sqlalchemy as sa

import gateway.db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('insurance_fee_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('centre_id', sa.String(length=40), nullable=False),
    sa.Column('mdtrt_id', sa.String(length=64), nullable=False),
    sa.Column('psn_no', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('feedetl_sn', sa.String(length=64), nullable=False),
    sa.Column('chrg_bchno', sa.String(length=64), nullable=True),
    sa.Column('fee_time', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('med_list_codg', sa.String(length=64), nullable=False),
    sa.Column('medins_list_codg', sa.String(length=64), nullable=False),
    sa.Column('item_name', sa.String(length=128), nullable=True),
    sa.Column('quantity', sa.String(length=32), nullable=False),
    sa.Column('unit_price', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('selfpay_prop', sa.String(length=16), nullable=False),
    sa.Column('fulamt_ownpay', sa.BigInteger(), nullable=False),
    sa.Column('overlmt', sa.BigInteger(), nullable=False),
    sa.Column('preselfpay', sa.BigInteger(), nullable=False),
    sa.Column('inscp_scp', sa.BigInteger(), nullable=False),
    sa.Column('chrgitm_lv', sa.String(length=16), nullable=True),
    sa.Column('med_chrgitm_type', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('msgid', sa.String(length=40), nullable=False),
    sa.Column('uploaded_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('centre_id', 'mdtrt_id', 'feedetl_sn', name='uq_insurance_fee_lines_line')
    )
    with op.batch_alter_table('insurance_fee_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_insurance_fee_lines_mdtrt_id'), ['mdtrt_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('insurance_fee_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_insurance_fee_lines_mdtrt_id'))

    op.drop_table('insurance_fee_lines')
