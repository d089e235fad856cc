"""Contact fields a mailbox address book carries, and the change feed the sync reads.

- `contacts` is rebuilt on SQLite with AUTOINCREMENT (an id is never reused), and gains a title, two phones, a postal address, a manager (another contact) and a
  `sync_key`: the key a sync created the record under (unique), so a sync that crashed after
  the insert finds its record on the replay instead of making a second one.
- `crm_changes`: one row per insert, update or delete of a contact (or of a contact's
  address), written by database triggers, so a change made through the gateway, the CLI, an
  import or plain SQL is seen alike; so is a change of what a contact shows of another record
  (its account renamed, its manager renamed: a card carries their names). Its `version` is monotonic; a delete row is the
  tombstone. On PostgreSQL the trigger takes a transaction-level advisory lock before it draws
  the version, so versions become visible in the order they were drawn: a reader that has seen
  version N never sees a later commit with a version below N (sequences alone do not promise
  that under concurrent writers).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FEED_LOCK = 0x63726D66  # "crmf": serialises the drawing of feed versions on PostgreSQL

_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_SQLITE = [
    f"""CREATE TRIGGER crm_contacts_ins AFTER INSERT ON contacts BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        VALUES ('contact', NEW.id, 'upsert', NEW.owner, {_SQLITE_NOW}); END""",
    f"""CREATE TRIGGER crm_contacts_upd AFTER UPDATE ON contacts BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        VALUES ('contact', NEW.id, 'upsert', NEW.owner, {_SQLITE_NOW}); END""",
    f"""CREATE TRIGGER crm_contacts_del AFTER DELETE ON contacts BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        VALUES ('contact', OLD.id, 'delete', OLD.owner, {_SQLITE_NOW}); END""",
    # an address added or removed changes the contact; not once the contact itself is gone
    # (forget removes the addresses after the record: the tombstone must stay the last word)
    f"""CREATE TRIGGER crm_contact_emails_ins AFTER INSERT ON party_emails WHEN NEW.kind = 'contact' BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, {_SQLITE_NOW} FROM contacts c WHERE c.id = NEW.party_id; END""",
    f"""CREATE TRIGGER crm_contact_emails_del AFTER DELETE ON party_emails WHEN OLD.kind = 'contact' BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, {_SQLITE_NOW} FROM contacts c WHERE c.id = OLD.party_id; END""",
    # names a contact shows of other records: its account's, its manager's
    f"""CREATE TRIGGER crm_accounts_renamed AFTER UPDATE OF name ON accounts WHEN NEW.name IS NOT OLD.name BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, {_SQLITE_NOW} FROM contacts c WHERE c.account_id = NEW.id; END""",
    f"""CREATE TRIGGER crm_managers_renamed AFTER UPDATE OF first_name, last_name ON contacts
        WHEN NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name BEGIN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, {_SQLITE_NOW} FROM contacts c WHERE c.manager_id = NEW.id; END""",
]
_SQLITE_DROP = [
    "crm_contacts_ins",
    "crm_contacts_upd",
    "crm_contacts_del",
    "crm_contact_emails_ins",
    "crm_contact_emails_del",
    "crm_accounts_renamed",
    "crm_managers_renamed",
]

_PG = [
    f"""CREATE FUNCTION crm_contact_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock({FEED_LOCK});
      IF TG_OP = 'DELETE' THEN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        VALUES ('contact', OLD.id, 'delete', OLD.owner, extract(epoch FROM clock_timestamp()));
        RETURN OLD;
      END IF;
      INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
      VALUES ('contact', NEW.id, 'upsert', NEW.owner, extract(epoch FROM clock_timestamp()));
      IF TG_OP = 'UPDATE' AND (NEW.first_name IS DISTINCT FROM OLD.first_name OR NEW.last_name IS DISTINCT FROM OLD.last_name) THEN
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, extract(epoch FROM clock_timestamp()) FROM contacts c WHERE c.manager_id = NEW.id;
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER crm_contacts_changed AFTER INSERT OR UPDATE OR DELETE ON contacts
       FOR EACH ROW EXECUTE FUNCTION crm_contact_changed()""",
    f"""CREATE FUNCTION crm_contact_email_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE pid integer; k text;
    BEGIN
      IF TG_OP = 'DELETE' THEN pid := OLD.party_id; k := OLD.kind; ELSE pid := NEW.party_id; k := NEW.kind; END IF;
      IF k = 'contact' THEN
        PERFORM pg_advisory_xact_lock({FEED_LOCK});
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, extract(epoch FROM clock_timestamp()) FROM contacts c WHERE c.id = pid;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER crm_contact_emails_changed AFTER INSERT OR UPDATE OR DELETE ON party_emails
       FOR EACH ROW EXECUTE FUNCTION crm_contact_email_changed()""",
    f"""CREATE FUNCTION crm_account_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM pg_advisory_xact_lock({FEED_LOCK});
        INSERT INTO crm_changes (kind, party_id, op, owner, changed_at)
        SELECT 'contact', c.id, 'upsert', c.owner, extract(epoch FROM clock_timestamp()) FROM contacts c WHERE c.account_id = NEW.id;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER crm_accounts_renamed AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION crm_account_renamed()""",
]
_PG_DROP = [
    "DROP TRIGGER IF EXISTS crm_accounts_renamed ON accounts",
    "DROP FUNCTION IF EXISTS crm_account_renamed()",
    "DROP TRIGGER IF EXISTS crm_contact_emails_changed ON party_emails",
    "DROP TRIGGER IF EXISTS crm_contacts_changed ON contacts",
    "DROP FUNCTION IF EXISTS crm_contact_email_changed()",
    "DROP FUNCTION IF EXISTS crm_contact_changed()",
]

_TEXT_COLUMNS = ("title", "phone_work", "phone_mobile", "street", "city", "region", "postal_code", "country")


def upgrade() -> None:
    # SQLite gives a deleted row's id to the next insert unless the table has AUTOINCREMENT,
    # which only a rebuild adds; PostgreSQL's sequences never give an id twice
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "contacts", recreate="always" if sqlite else "auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for name in _TEXT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("manager_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("sync_key", sa.String(255), nullable=True))
        batch.create_foreign_key("fk_contacts_manager", "contacts", ["manager_id"], ["id"], ondelete="SET NULL")
        batch.create_unique_constraint("uq_contacts_sync_key", ["sync_key"])
        batch.create_index("ix_contacts_manager_id", ["manager_id"])
        batch.create_index("ix_contacts_owner", ["owner"])
    op.create_table(
        "crm_changes",
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_crm_changes_party", "crm_changes", ["kind", "party_id"])
    # the contacts that exist already are the feed's first entries: a first sync reads them all
    now = "extract(epoch FROM clock_timestamp())" if op.get_bind().dialect.name == "postgresql" else _SQLITE_NOW
    op.execute(
        "INSERT INTO crm_changes (kind, party_id, op, owner, changed_at) "
        f"SELECT 'contact', id, 'upsert', owner, {now} FROM contacts ORDER BY id"
    )
    for statement in _PG if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_DROP:
            op.execute(statement)
    else:
        for name in _SQLITE_DROP:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("crm_changes")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_owner")
        batch.drop_index("ix_contacts_manager_id")
        batch.drop_constraint("uq_contacts_sync_key", type_="unique")
        batch.drop_constraint("fk_contacts_manager", type_="foreignkey")
        for name in ("sync_key", "manager_id", *_TEXT_COLUMNS):
            batch.drop_column(name)
