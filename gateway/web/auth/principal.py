"""Who is asking: a `Principal` with a role and the mailboxes they own.

What a mailbox's owner is (the config says it; the ledger's copies carry source and account):
- a source reaching one mailbox (maildir, imap with `username`) belongs to the people whose
  address is among its `owner` (imap: else its `username` when it is an address) or is its
  `crm_user`: they see every copy of that source, whatever its account;
- a source reaching many mailboxes (imap/ews/graph `mailboxes:`, the smtp intake's users) keeps
  each mailbox's address as the copy's account: a person sees the accounts equal to one of
  their addresses (case-insensitive).
`mailboxes` holds both as text: `SOURCE/*` for a whole source, `*/ADDRESS` for an account.
An admin sees everything. The records a person may pick in the CRM are those of their CRM
users: their addresses and the `crm_user` of the sources they own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.admin.scope import Visibility
from gateway.config import Config
from gateway.mailboxes.smtp.config import SmtpConfig


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    mailboxes: frozenset[str]
    crm_users: frozenset[str] = frozenset()  # whose records in the CRM they may see (admin: all)
    via_token: bool = False  # signed in with an API token (no session, no CSRF)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def sees(self, source: str, account: str) -> bool:
        if self.is_admin:
            return True
        return f"{source}/*" in self.mailboxes or f"*/{account.strip().lower()}" in self.mailboxes

    def visibility(self) -> Visibility | None:
        """The ledger filter for what this person sees; None: everything."""
        if self.is_admin:
            return None
        return Visibility(
            sources=frozenset(m[:-2] for m in self.mailboxes if m.endswith("/*")),
            accounts=frozenset(m[2:] for m in self.mailboxes if m.startswith("*/")),
            crm_users=self.crm_users,
        )


def principal_for(config: Config, name: str, role: str, addresses: list[str] | tuple[str, ...]) -> Principal:
    """The principal of a configured user or token, with the mailboxes the config gives them."""
    mine = {a.strip().lower() for a in addresses if a.strip()}
    boxes = {f"*/{a}" for a in mine}
    crm_users = set(mine)
    for src in config.sources:
        if _reaches_many(src):
            if isinstance(src, SmtpConfig):
                crm_users |= {(u.crm_user or u.address).lower() for u in src.users if u.address.lower() in mine}
            continue
        keys = {o.lower() for o in src.owners} | ({src.crm_user.lower()} if src.crm_user else set())
        if keys & mine:
            boxes.add(f"{src.name}/*")
            if src.crm_user:
                crm_users.add(src.crm_user.lower())
    return Principal(name=name, role=Role(role), mailboxes=frozenset(boxes), crm_users=frozenset(crm_users))


def _reaches_many(src: object) -> bool:
    if isinstance(src, SmtpConfig):
        return True
    many = getattr(src, "many", None)
    if isinstance(many, bool):
        return many
    return bool(getattr(src, "mailboxes", None) or getattr(src, "mailboxes_file", None))
