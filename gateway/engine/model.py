"""Values that cross the engine's boundary: what it is given and the Plan it returns.

The engine is pure: it reads the message, the context and the CRM (lookups only, through
`CrmView`) and returns a Plan. The pipeline executes the Plan; `test-rules` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from gateway.crm.base import PartyData, PartyKind, PartyRef

Outcome = Literal["done", "ignored", "skipped", "review"]


class CrmView(Protocol):
    """The read-only part of a connector the engine may call while it evaluates."""

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]: ...

    def find_by_domain(self, domain: str) -> list[PartyRef]: ...

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]: ...


@dataclass(frozen=True)
class EvalContext:
    """Where the message was found and the config facts the rules depend on."""

    source: str  # configured source name
    source_type: str  # maildir | imap | smtp | ews | graph | file
    folder: str
    mailbox: str  # the mailbox owner's address (first of `owners`)
    owners: tuple[str, ...] = ()  # the owner's addresses: never counterparts, never created
    intake_addresses: tuple[str, ...] = ()  # gateway intake addresses: same
    internal_domains: tuple[str, ...] = ()  # colleagues: same
    exclude: tuple[str, ...] = ()  # never stored (patterns: exact, *@x, @domain)
    freemail_domains: frozenset[str] = frozenset()
    crm_user: str = ""  # default owner of created records
    tags_present: frozenset[str] = frozenset()  # tag names already on the message (`tagged:`)
    error_tags: tuple[str, ...] = ("CRM error",)
    review_tags: tuple[str, ...] = ("CRM review",)


@dataclass(frozen=True)
class Target:
    """Where an attach goes: an existing record, or one the Plan creates (by its create key)."""

    ref: PartyRef | None = None
    create_key: str | None = None

    def label(self) -> str:
        return self.ref.label() if self.ref else f"new:{self.create_key}"


@dataclass(frozen=True)
class PlannedCreate:
    key: str  # journal step key, stable across runs: "create:<kind>:<address key or domain>"
    kind: PartyKind
    address: str  # the address (or, for an account, the domain) the record is for
    data: PartyData
    rule: str
    account: Target | None = None  # link_account: the account to link a created lead/contact to


@dataclass(frozen=True)
class PlannedAttach:
    targets: tuple[Target, ...]
    attachments: bool
    rules: tuple[str, ...]


@dataclass(frozen=True)
class PlannedNote:
    key: str  # journal step key, stable across runs: "note:<rule>:<n-th note of the rule>"
    targets: tuple[Target, ...]
    text: str  # rendered
    title: str
    rule: str


@dataclass(frozen=True)
class OnError:
    tags: tuple[str, ...] = ("CRM error",)
    untags: tuple[str, ...] = ()
    move: str | None = None


@dataclass(frozen=True)
class TraceStep:
    rule: str  # rule name, or "" for engine-level notes
    event: str  # "condition" | "matched" | "not-matched" | "action" | "note" | "stop" | "skip"
    detail: str  # human text: "folder is 'VLeads'", "header Auto-Submitted: auto-replied decided"
    result: bool | None = None


@dataclass(frozen=True)
class ReviewInfo:
    reason: str
    candidates: tuple[tuple[str, tuple[PartyRef, ...]], ...] = ()  # (address, records)


@dataclass
class Plan:
    outcome: Outcome
    direction: Literal["inbound", "outbound"]
    counterparts: tuple[str, ...] = ()
    reason: str = ""  # skip reason, or why ignored / in review
    creates: list[PlannedCreate] = field(default_factory=list)  # in execution order (accounts first)
    attach: PlannedAttach | None = None
    notes: list[PlannedNote] = field(default_factory=list)  # after the attach, in rule order
    tags_add: list[str] = field(default_factory=list)
    tags_remove: list[str] = field(default_factory=list)
    move: str | None = None
    review: ReviewInfo | None = None  # set when a person must pick; tags_add is applied after resolve
    on_error: OnError = field(default_factory=OnError)
    touched: list[str] = field(default_factory=list)  # rule names whose `when` held
    found: dict[str, list[PartyRef]] = field(default_factory=dict)
    found_by_domain: dict[str, list[PartyRef]] = field(default_factory=dict)
    trace: list[TraceStep] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The Plan as `test-rules --json` and the ledger show it."""
        return jsonable(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        """A stored Plan (`to_json`'s output, of this version or an earlier one: a key it did
        not write yet takes its default) read back whole: a retry after a crash replays it
        instead of evaluating again, and `explain` shows what the rules found and traced."""
        attach = d.get("attach")
        review = d.get("review")
        on_error = d.get("on_error") or {}
        return cls(
            outcome=d["outcome"],
            direction=d["direction"],
            counterparts=tuple(d.get("counterparts", ())),
            reason=d.get("reason", ""),
            creates=[
                PlannedCreate(
                    key=c["key"],
                    kind=c["kind"],
                    address=c["address"],
                    data=_party_data(c["data"]),
                    rule=c.get("rule", ""),
                    account=_target(c.get("account")),
                )
                for c in d.get("creates", [])
            ],
            attach=PlannedAttach(
                targets=tuple(t for t in map(_target, attach["targets"]) if t is not None),
                attachments=attach.get("attachments", True),
                rules=tuple(attach.get("rules", ())),
            )
            if attach
            else None,
            notes=[
                PlannedNote(
                    key=n["key"],
                    targets=tuple(t for t in map(_target, n.get("targets", [])) if t is not None),
                    text=n.get("text", ""),
                    title=n.get("title", ""),
                    rule=n.get("rule", ""),
                )
                for n in d.get("notes", [])
            ],
            tags_add=list(d.get("tags_add", [])),
            tags_remove=list(d.get("tags_remove", [])),
            move=d.get("move"),
            review=ReviewInfo(
                reason=review.get("reason", ""),
                candidates=tuple((a, tuple(_ref(r) for r in refs)) for a, refs in review.get("candidates", [])),
            )
            if review
            else None,
            on_error=OnError(
                tags=tuple(on_error.get("tags", ("CRM error",))),
                untags=tuple(on_error.get("untags", ())),
                move=on_error.get("move"),
            ),
            touched=list(d.get("touched", [])),
            found={a: [_ref(r) for r in refs] for a, refs in (d.get("found") or {}).items()},
            found_by_domain={a: [_ref(r) for r in refs] for a, refs in (d.get("found_by_domain") or {}).items()},
            trace=[
                TraceStep(rule=t.get("rule", ""), event=t.get("event", ""), detail=t.get("detail", ""), result=t.get("result"))
                for t in d.get("trace", [])
            ],
        )


def _ref(d: dict[str, Any]) -> PartyRef:
    made = d.get("created_at")
    return PartyRef(
        kind=d["kind"], id=str(d["id"]), name=d.get("name", ""), created_at=datetime.fromisoformat(made) if made else None
    )


def _target(d: dict[str, Any] | None) -> Target | None:
    if d is None:
        return None
    return Target(ref=_ref(d["ref"]) if d.get("ref") else None, create_key=d.get("create_key"))


def _party_data(d: dict[str, Any]) -> PartyData:
    return PartyData(
        kind=d["kind"],
        emails=tuple(d.get("emails", ())),
        first_name=d.get("first_name", ""),
        last_name=d.get("last_name", ""),
        name=d.get("name", ""),
        company=d.get("company", ""),
        domain=d.get("domain", ""),
        owner=d.get("owner", ""),
        account=_ref(d["account"]) if d.get("account") else None,
        fields=dict(d.get("fields") or {}),
    )


def jsonable(value: Any) -> Any:
    """A Plan or a part of it as JSON values, the form `to_json` gives (`explain` shows parts).
    Like `json(asdict(value))` without asdict's deep copies (they cost a millisecond a Plan)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    fields_ = getattr(value, "__dataclass_fields__", None)
    if fields_ is not None:
        return {name: jsonable(getattr(value, name)) for name in fields_}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return sorted(jsonable(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
