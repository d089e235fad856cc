"""The ledger's tables (SQLAlchemy Core). See DESIGN.md "Flow of one message".

- `locations`: where a copy of a mail was found (a SourceRef); unique, so seeing the same
  copy again (restart, rescan) finds its row instead of making a second one.
- `messages`: one row per mail identity (Message-ID + content hash); claiming is the insert,
  and a second copy (another folder or mailbox, another worker) links to the first.
- `journal`: intent and result of every CRM step of a message, so a replay after a crash
  adopts what was done instead of doing it twice.
- `events`: the history `explain` shows. `cursors` and `status` hold per-source progress.
- `gateways` and `leases`: the gateways sharing this ledger (a heartbeat each, and the
  sources each runs) and which of them watches each mailbox (gateway/ledger/leases.py).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("identity", String(600), nullable=False, unique=True),
    Column("message_id", String(500), nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    # received | processing | crm_done | done | done_untagged | ignored | skipped | review | retrying | quarantined
    Column("state", String(20), nullable=False, index=True),
    Column("reason", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("spool_path", Text),
    Column("primary_location", Integer),  # the copy whose claim made this row: it does the CRM work
    Column("subject", Text, nullable=False, default=""),
    Column("from_address", String(320), nullable=False, default=""),
    Column("size", Integer, nullable=False, default=0),
    Column("plan_json", Text),  # the last Plan (trace, tags, review candidates)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

locations = Table(
    "locations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_pk", Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True),
    Column("source", String(100), nullable=False),
    Column("account", String(320), nullable=False),
    Column("folder", String(500), nullable=False),
    Column("uidvalidity", BigInteger, nullable=False, default=0),  # 32-bit unsigned in IMAP
    Column("item_key", String(1000), nullable=False),
    # new | waiting (a copy whose first is still in work) | applied | untagged | none (nothing to tag)
    Column("state", String(20), nullable=False, default="new"),
    Column("spool_path", Text),
    Column("declared_size", Integer),  # set when a source kept only the headers of a mail this big
    Column("tags_add", Text, nullable=False, default="[]"),
    Column("tags_remove", Text, nullable=False, default="[]"),
    Column("move_to", String(500)),
    Column("tags", Text, nullable=False, default="[]"),  # tags the ledger knows are on the message
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "account", "folder", "uidvalidity", "item_key", name="uq_location"),
)
Index("ix_locations_source_folder", locations.c.source, locations.c.folder)
# copies waiting for their tags: a mailbox's holder sweeps them (gateway/ledger/leases.py)
Index("ix_locations_state", locations.c.state)

journal = Table(
    "journal",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("step", String(700), primary_key=True),
    Column("result", Text),  # JSON; NULL = intent recorded, result not yet known
    Column("intent_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
)

message_addresses = Table(
    "message_addresses",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("address_key", String(320), primary_key=True),
)
Index("ix_message_addresses_key", message_addresses.c.address_key)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_pk", Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event", String(40), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("account", String(320), primary_key=True),
    Column("folder", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

status = Table(
    "status",
    metadata,
    Column("key", String(300), primary_key=True),  # "source:NAME:FOLDER", "rules", "service"
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# The key prefix of a worker's in-hand marks in `status`: gateway/ledger/work.py writes them,
# gateway/ledger/reads.py leaves them out of the status. Here, below both: reads importing
# work closed a circle (work takes the Ledger, whose store imports reads).
WORK_PREFIX = "work:"

gateways = Table(
    "gateways",
    metadata,
    Column("name", String(100), primary_key=True),  # config `gateway.name`
    Column("host", String(255), nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # its heartbeat: live until then
    Column("sources", Text, nullable=False, default="{}"),  # JSON: source name → what it reaches
)

leases = Table(
    "leases",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("account", String(320), primary_key=True),
    Column("owner", String(100)),  # the gateway watching this mailbox; NULL: nobody
    Column("expires_at", DateTime(timezone=True), nullable=False),  # its owner's hold ends then unless renewed
    Column("acquired_at", DateTime(timezone=True)),
    Column("wanted_until", DateTime(timezone=True), nullable=False),  # some live gateway has it configured
    Column("requested_by", String(100)),  # a gateway under its fair share asks the owner for it
    Column("requested_until", DateTime(timezone=True)),
)

# ---- the contact sync (gateway/ledger/pim.py, gateway/pimsync/) --------------------------
# A link per (address book, card href) ↔ (CRM kind, id), with the fields both sides had at
# the last sync (the base of the three-way merge); "unlinked": a card deleted in the mailbox
# whose CRM record stays, and is not sent back to that address book.
pim_links = Table(
    "pim_links",
    metadata,
    Column("book", String(100), primary_key=True),  # pimsync.addressbooks[].name
    Column("href", String(1000), primary_key=True),  # the card's path on the server
    Column("uid", String(500), nullable=False, default=""),
    Column("kind", String(16), nullable=False),
    Column("crm_id", String(100), nullable=False),
    Column("state", String(16), nullable=False, default="linked"),  # linked | unlinked
    Column("etag", Text, nullable=False, default=""),
    Column("snapshot", Text, nullable=False, default="{}"),  # JSON: the fields at the last sync
    Column("crm_born", String(40), nullable=False, default=""),  # the record's creation stamp
    Column("card_seen_etag", Text, nullable=False, default=""),  # the card version seen last
    Column("card_seen_at", Float, nullable=False, default=0.0),  # when that version was first seen
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("book", "kind", "crm_id", name="uq_pim_links_record"),
)
# Intent before a write that a replay could repeat: "create_crm" (a record from a card) and
# "put_card" (a card from a record). A row still "intent" at the start of a round is redone;
# the writes themselves are idempotent by key (sync_key, If-None-Match on a fixed href).
pim_journal = Table(
    "pim_journal",
    metadata,
    Column("book", String(100), primary_key=True),
    Column("action", String(20), primary_key=True),
    Column("key", String(1000), primary_key=True),  # a card href, or a CRM id
    Column("state", String(10), nullable=False),  # intent | done
    Column("intent_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
)
pim_conflicts = Table(
    "pim_conflicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("book", String(100), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("crm_id", String(100), nullable=False),
    Column("href", String(1000), nullable=False),
    Column("field", String(40), nullable=False),
    Column("crm_value", Text, nullable=False),  # JSON
    Column("card_value", Text, nullable=False),  # JSON
    Column("winner", String(8), nullable=False),  # crm | card: the newer change
    Column("at", DateTime(timezone=True), nullable=False),
    # open | chosen (a person kept the loser: the next round applies it) | applied | seen
    # (the winner kept) | superseded (the field changed again before the choice was applied)
    Column("state", String(12), nullable=False, server_default="open", index=True),
    Column("kept", String(8)),  # crm | card: what the person chose
    Column("resolved_by", String(320)),
    Column("resolved_at", DateTime(timezone=True)),
)
# per address book: the CRM feed version and the server's sync-token seen last
pim_cursors = Table(
    "pim_cursors",
    metadata,
    Column("book", String(100), primary_key=True),
    Column("crm_version", BigInteger, nullable=False, default=0),
    Column("sync_token", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
