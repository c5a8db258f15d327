"""Payment URLs as text: signed H5 and QR URLs exceed 512 characters (Alipay wap.pay).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.alter_column("code_url", type_=sa.Text(), existing_type=sa.String(512), existing_nullable=True)
        batch_op.alter_column("h5_url", type_=sa.Text(), existing_type=sa.String(512), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.alter_column("code_url", type_=sa.String(512), existing_type=sa.Text(), existing_nullable=True)
        batch_op.alter_column("h5_url", type_=sa.String(512), existing_type=sa.Text(), existing_nullable=True)
