"""Actions on the message's course: review, tag, untag, move, assign, skip, stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from yaml.nodes import Node

from gateway.engine.action_base import Action, Args, action
from gateway.reading.yamlpos import Checker, is_null, kind_name

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


class ReviewOptions(Args):
    reason: str = "review requested by rule"


@action("review")
class Review(Action):
    Options = ReviewOptions
    shorthand = "reason"

    def apply(self, ev: Evaluation) -> str:
        ev.review(self.options.reason)
        return f"review: {self.options.reason}"


# -- tags, move, assign, skip, stop --------------------------------------------------------


class _Names(Action):
    on_error_ok = True
    schema_value: ClassVar[dict[str, Any]] = {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]
    }

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is None or is_null(node):
            if node is not None:
                chk.error(node, f"{cls.key} needs a tag name or a list of them")
            return None
        got = chk.strings(node, cls.key)
        if got is None:
            return None
        if cls.key == "tag" and chk.labels_are_folders:
            watched = {f.casefold(): f for f in chk.watched_folders}
            for name, n in got:
                if name.casefold() in watched:
                    chk.error(
                        n,
                        f"tag '{name}' is the watched folder '{watched[name.casefold()]}': "
                        "on this server labels are folders, so the tag would file the mail there again",
                    )
                    return None
        return cls(tuple(name for name, _ in got))

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return cls.schema_value


@action("tag")
class Tag(_Names):
    def apply(self, ev: Evaluation) -> str:
        ev.tag(self.options)
        return f"tag {', '.join(self.options)}"


@action("untag")
class Untag(_Names):
    def apply(self, ev: Evaluation) -> str:
        ev.untag(self.options)
        return f"untag {', '.join(self.options)}"


@action("move")
class Move(Action):
    on_error_ok = True

    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is None:
            return None
        got = chk.string(node, "move")
        return None if got is None else cls(got)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}

    def apply(self, ev: Evaluation) -> str:
        ev.plan.move = self.options
        return f"move to '{self.options}' (after tagging)"


class AssignOptions(Args):
    owner: str  # "mailbox" or a CRM user's address


@action("assign")
class Assign(Action):
    Options = AssignOptions
    shorthand = "owner"

    def apply(self, ev: Evaluation) -> str:
        owner = ev.ctx.mailbox if self.options.owner == "mailbox" else self.options.owner
        ev.assign_owner = owner
        return f"assign created records to {owner}"


class SkipOptions(Args):
    reason: str = "skipped by rule"


@action("skip")
class Skip(Action):
    Options = SkipOptions
    shorthand = "reason"

    def apply(self, ev: Evaluation) -> str:
        ev.skip(self.options.reason)
        return f"skip: {self.options.reason} (nothing planned is executed)"


@action("stop")
class Stop(Action):
    @classmethod
    def parse(cls, node: Node | None, chk: Checker) -> Action | None:
        if node is not None and not is_null(node):
            chk.error(node, f"stop takes no options, not {kind_name(node)}")
            return None
        return cls(None)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"type": "null"}

    def apply(self, ev: Evaluation) -> str:
        ev.stopped = True
        return "stop"
