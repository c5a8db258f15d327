"""Finance console: departments (科室/部门) under the campuses.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

import gateway.db.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('departments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('campus_id', sa.String(length=40), nullable=True),
    sa.Column('parent_id', sa.String(length=40), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gateway.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('departments')
