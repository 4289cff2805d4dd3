"""${message}

Revision ID: ${up_revision}
Revises:${" " + down_revision if down_revision else ""}
% if depends_on:
Depends on: ${depends_on if isinstance(depends_on, str) else ", ".join(depends_on)}
% endif
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = "${up_revision}"
down_revision = ${'"%s"' % down_revision if down_revision else None}
branch_labels = ${repr(branch_labels).replace("'", '"')}
depends_on = ${repr(depends_on).replace("'", '"')}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
