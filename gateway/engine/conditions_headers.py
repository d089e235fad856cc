"""Conditions on the message's addresses, text and headers: from/to/cc/… (address match),
subject and body (text match), header and exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node

from gateway.engine.condition_base import STRINGS_SCHEMA, Condition, Names, condition, short
from gateway.engine.condition_match import MATCH_OPS, Match, parse_match, parse_match_mapping
from gateway.reading.yamlpos import Checker

if TYPE_CHECKING:
    from gateway.engine.state import Evaluation


__all__ = ["ADDRESS_KEYS", "AddressTest", "Exists", "HeaderTest", "TextTest"]


ADDRESS_KEYS = ("from", "to", "cc", "bcc", "reply_to", "sender", "recipients", "participants", "counterpart", "original_sender")


@condition(*ADDRESS_KEYS)
class AddressTest(Condition):
    def __init__(self, key: str, match: Match) -> None:
        self.key, self.match = key, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        m = parse_match(node, chk, key, address=True)
        return None if m is None else cls(key, m)

    @classmethod
    def schema(cls, key: str) -> dict[str, Any]:
        return {"$ref": "#/$defs/address_match"}

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        # `sender` as a header test is the Sender header, else (RFC 5322 3.6.2) the From.
        m = ev.message
        found = list(m.sender or m.from_) if self.key == "sender" else ev.addresses(self.key)
        for a in found:
            t = self.match.first(a.address, True)
            if t is not None:
                return True, f"{self.key} {a.address} {t.describe()}"
        if not found:
            return False, f"{self.key}: no address (wanted {self.match.describe()})"
        shown = ", ".join(a.address for a in found[:5])
        return False, f"{self.key} {shown}: none {self.match.describe()}"


@condition("subject", "body")
class TextTest(Condition):
    def __init__(self, key: str, match: Match) -> None:
        self.key, self.match = key, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        m = parse_match(node, chk, key, address=False)
        return None if m is None else cls(key, m)

    @classmethod
    def schema(cls, key: str) -> dict[str, Any]:
        return {"$ref": "#/$defs/text_match"}

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        text = ev.message.subject if self.key == "subject" else ev.message.text
        t = self.match.first(text, False)
        if t is not None:
            return True, f"{self.key} '{short(text)}' {t.describe()}"
        return False, f"{self.key} '{short(text)}' not {self.match.describe()}"


@condition("header")
class HeaderTest(Condition):
    schema_value = {
        "type": "object",
        "properties": {"name": {"type": "string"}, **{op: STRINGS_SCHEMA for op in MATCH_OPS[:-1]}},
        "required": ["name"],
        "additionalProperties": False,
    }

    def __init__(self, name: str, match: Match) -> None:
        self.name, self.match = name, match

    @classmethod
    def parse(cls, key: str, node: Node, chk: Checker) -> Condition | None:
        pairs = chk.mapping(node, "header")
        if pairs is None:
            return None
        name_node = next((v for k, v in pairs if k.value == "name"), None)
        if name_node is None:
            chk.error(node, "header: missing 'name'")
            return None
        name = chk.string(name_node, "header.name")
        assert isinstance(node, MappingNode)
        tests = parse_match_mapping(node, chk, "header", address=False, extra=("name",))
        if name is None or tests is None:
            return None
        return cls(name, Match(tuple(tests)))

    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        values = ev.message.header_values(self.name)
        for v in values:
            t = self.match.first(v, False)
            if t is not None:
                return True, f"header {self.name}: '{short(v)}' {t.describe()}"
        if not values:
            return False, f"header {self.name}: absent"
        return False, f"header {self.name}: '{short(values[0])}' not {self.match.describe()}"


@condition("exists")
class Exists(Names):
    def evaluate(self, ev: Evaluation) -> tuple[bool, str]:
        missing = [h for h in self.names if not ev.message.has_header(h)]
        if missing:
            return False, f"exists: header {', '.join(missing)} missing"
        return True, f"exists: {', '.join(self.names)} present"
