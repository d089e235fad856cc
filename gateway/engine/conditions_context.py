"""Conditions on where the message is and what is known of it: folder, source, mailbox,
direction, tagged and known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yaml.nodes import Node

from gateway.engine.condition_base import Condition, Names, condition, quoted
from gateway.message import addresses
from gateway.reading.yamlpos import Checker

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


__all__ = ["DirectionIs", "FolderIs", "Known", "MailboxIs", "SourceIs", "Tagged"]


@condition("folder")
class FolderIs(Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        folder = ev.ctx.folder
        hit = next((n for n in self.names if n == folder or (n.upper() == "INBOX" == folder.upper())), None)
        return self.verdict(folder, hit)


@condition("source")
class SourceIs(Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        hit = next((n for n in self.names if n == ev.ctx.source), None)
        return self.verdict(ev.ctx.source, hit)


@condition("mailbox")
class MailboxIs(Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        mine = [a for a in (ev.ctx.mailbox, *ev.ctx.owners) if a]
        for n in self.names:
            for a in mine:
                if addresses.key(a) == addresses.key(n):
                    return True, f"mailbox '{a}' is '{n}'"
        return False, f"mailbox '{ev.ctx.mailbox}' is not {quoted(self.names)}"


@condition("direction")
class DirectionIs(Condition):
    schema_value = {"enum": ["inbound", "outbound"]}

    def __init__(self, want: str) -> None:
        self.want = want

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.choice(node, ("inbound", "outbound"), key)
        return None if got is None else cls(got)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        why = "From or Sender is the owner" if ev.direction == "outbound" else "From/Sender is not the owner"
        return ev.direction == self.want, f"direction is {ev.direction} ({why}), wanted {self.want}"


@condition("tagged")
class Tagged(Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        present = {t.casefold(): t for t in ev.ctx.tags_present}
        hit = next((n for n in self.names if n.casefold() in present), None)
        if hit is not None:
            return True, f"tagged '{present[hit.casefold()]}'"
        return False, f"not tagged {quoted(self.names)}"


@condition("known")
class Known(Condition):
    WHO = ("sender", "counterpart", "participants", "original_sender")
    schema_value = {"enum": list(WHO)}

    def __init__(self, who: str) -> None:
        self.who = who

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        got = chk.choice(node, cls.WHO, "known")
        return None if got is None else cls(got)

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        found = [a for a in ev.addresses(self.who) if not ev.protected(a)]
        for a in found:
            if ev.known(a):
                refs = [r.label() for r in ev.plan.found.get(a.key, [])] + [f"new:{k}" for k in ev.created.get(a.key, [])]
                return True, f"known {self.who} {a.address}: {', '.join(refs)}"
        if not found:
            return False, f"known {self.who}: no address"
        return False, f"known {self.who}: {', '.join(a.address for a in found)} not found or planned"
