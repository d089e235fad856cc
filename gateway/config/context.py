"""EvalContext for a copy of a mail: the config facts its source and folder stand for."""

from __future__ import annotations

from gateway.config.model import Config
from gateway.engine.model import EvalContext
from gateway.mailboxes.base import SourceRef
from gateway.mailboxes.smtp.config import SmtpConfig

FILE_SOURCE = "file"  # `process FILE.eml` without --source


class Contexts:
    def __init__(self, config: Config) -> None:
        self.config = config

    def for_ref(self, ref: SourceRef, tags_present: frozenset[str] = frozenset()) -> EvalContext:
        c = self.config
        owners: list[str] = []
        intake: list[str] = []
        crm_user = ""
        source_type = FILE_SOURCE
        try:
            src = c.source(ref.source)
        except Exception:
            src = None
        if src is not None:
            source_type = src.type
            owners = list(src.owners)
            crm_user = src.crm_user or ""
            if isinstance(src, SmtpConfig):
                # Every user's intake address is protected (never a counterpart); the owner is
                # the user the mail came in for (ref.account = their own address), so a BCC'd
                # mail From them is outbound and its counterparts are its To and Cc.
                intake = [a for u in src.users for a in src.intake_addresses(u)]
                user = next((u for u in src.users if u.address.lower() == ref.account.lower()), None)
                if user:
                    owners = [user.address, *user.allowed_from]
                    crm_user = user.crm_user or crm_user or user.address
        if ref.account and "@" in ref.account and ref.account not in owners:
            owners.append(ref.account)
        mailbox = ref.account if "@" in ref.account else (owners[0] if owners else "")
        return EvalContext(
            source=ref.source,
            source_type=source_type,
            folder=ref.folder,
            mailbox=mailbox,
            owners=tuple(owners),
            intake_addresses=tuple(intake),
            internal_domains=tuple(c.internal_domains),
            exclude=tuple(c.exclude),
            freemail_domains=c.freemail,
            crm_user=crm_user or mailbox,
            tags_present=tags_present,
            error_tags=tuple(c.tags.error),
            review_tags=tuple(c.tags.review),
        )
