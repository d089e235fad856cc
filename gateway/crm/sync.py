"""What a two-way sync of contacts needs of a CRM: a change feed and contact read/write.

Optional capabilities of a connector, beside `Connector` (gateway/crm/base.py): a connector
offers them through `contact_sync()`: the embedded CRM (gateway/crm/sql_contacts.py), Tryton
(gateway/crm/tryton_contacts.py) and Odoo (gateway/crm/odoo_contacts.py); `contact_sync(crm)`
below says plainly when a backend cannot.

The feed is the CRM's word on what changed since a version the sync saw last; whoever made
the change (the gateway, a person, an import, plain SQL) must not matter. Where the CRM keeps
a delete as a tombstone, a sync that was away still learns of it from the feed; where it keeps
none, the store also offers `GoneCheck`. A feed may tell a change more than once (Tryton's
re-reads the records stamped at its cursor); the sync compares with its snapshot, so a repeat
costs a read and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, runtime_checkable

# The fields a contact has on both sides, in the order a person reads them. `organization` is
# the linked account's name and `manager` the linked manager contact's name: references
# travel as names, and the CRM side links (or creates, for an account) the record they name.
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "title",
    "organization",
    "emails",
    "phone_work",
    "phone_mobile",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "manager",
)


@dataclass(frozen=True)
class ContactFields:
    """A contact as both sides know it; `emails` in order, the first the preferred one."""

    first_name: str = ""
    last_name: str = ""
    title: str = ""
    organization: str = ""
    emails: tuple[str, ...] = ()
    phone_work: str = ""
    phone_mobile: str = ""
    street: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    manager: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["emails"] = list(self.emails)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContactFields:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["emails"] = tuple(values.get("emails") or ())
        return cls(**values)

    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.emails[0] if self.emails else "")


@dataclass(frozen=True)
class SyncContact:
    """One contact of the CRM, with whom it is assigned to and its feed version."""

    id: str
    owner: str
    fields: ContactFields
    version: int = 0
    # when the record was created: an id met again with another stamp is another record (a
    # CRM that gave a deleted record's id again), never the one a link knew
    born: str = ""


@dataclass(frozen=True)
class Change:
    """The last change of one record since a version (several collapse into the last)."""

    kind: str  # "contact" (events and tasks come later)
    id: str
    version: int
    deleted: bool  # a tombstone: the record is gone
    owner: str  # the owner the record had at that change
    changed_at: float  # seconds since the epoch (UTC), by the CRM's clock


@runtime_checkable
class ChangeFeed(Protocol):
    """What changed in the CRM since a version: every kind the CRM feeds (contacts so far;
    events and tasks will come through the same feed, told apart by `Change.kind`)."""

    def changes_since(self, version: int, limit: int = 1000) -> tuple[list[Change], int]:
        """Records changed after `version` (at most `limit` feed entries read), and the version
        to ask from next time; the same version back when nothing changed. The last change
        per record, but a delete followed by a new insert under the same id is reported as
        both (the delete first)."""
        ...


@runtime_checkable
class ContactStore(Protocol):
    """Contacts read and written whole. Every write is safe to repeat after a crash."""

    def get_contact(self, contact_id: str) -> SyncContact | None: ...

    def create_contact(self, data: ContactFields, owner: str, key: str) -> SyncContact:
        """Create a contact assigned to `owner`, once per `key`: asked again with the same key
        (a replay after a crash), it returns the record made the first time."""
        ...

    def update_contact(self, contact_id: str, data: ContactFields) -> SyncContact:
        """Write these fields (an account named in `organization` is linked, or created; a
        manager is linked when a contact of that name exists) and return what is stored."""
        ...

    def delete_contact(self, contact_id: str) -> None:
        """Delete the contact (no error when it is gone already)."""
        ...


@runtime_checkable
class ContactSync(ChangeFeed, ContactStore, Protocol):
    """A CRM's side of the contact sync: its feed and its contacts."""


@runtime_checkable
class GoneCheck(Protocol):
    """For a CRM that keeps no tombstones (Tryton, Odoo: a deleted row is simply gone), the
    feed cannot tell of deletes; the sync asks instead which of the records it has linked
    still exist, once per round."""

    def missing(self, kind: str, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` of records of `kind` that no longer exist."""
        ...


def contact_sync(crm: object) -> ContactSync:
    """The connector's contact sync, or NotSupported when its backend has none yet."""
    make = getattr(crm, "contact_sync", None)
    if make is None:
        from gateway.errors import NotSupported

        name = getattr(crm, "name", type(crm).__name__)
        raise NotSupported(f"the {name} CRM connector cannot sync contacts yet (crm.backend: sql, tryton and odoo can)")
    store: ContactSync = make()
    return store
