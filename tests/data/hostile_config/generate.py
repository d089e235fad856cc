"""Hostile config and rule files, generated into a folder (never checked in: some are FIFOs,
symlinks to devices, or expand to a billion values).

Each case is an installation folder with its own config.yaml (or a config path that is not a
file at all) and rules/. `check` must answer every one within bounds: exit 1 with the problem
at FILE:LINE:COL, never a traceback, never a hang.

    .venv/bin/python -m tests.data.hostile_config.generate /tmp/hostile   # to look at them
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GOOD_RULES = """\
rules:
  - name: Leads
    when: {folder: VLeads}
    then: [stop]
"""


def _config(
    *,
    ledger: str = "sqlite:///var/gateway.db",
    crm: str = "{backend: sql, url: 'sqlite:///var/crm.db'}",
    rules: str = "[rules/*.yaml]",
    folders: str = "[VLeads]",
    extra: str = "",
    source_extra: str = "",
) -> str:
    return (
        f"ledger: {{url: '{ledger}'}}\n"
        f"crm: {crm}\n"
        f"rules: {rules}\n"
        f"{extra}"
        "sources:\n"
        "  - name: local\n"
        "    type: maildir\n"
        "    path: var/mail\n"
        f"    folders: {folders}\n"
        f"{source_extra}"
    )


def _laughs(levels: int = 9, key: str = "x") -> str:
    """The "billion laughs": 9 levels of 10 aliases each expand to 10**9 strings."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    body = "\n".join("  " + line for line in lines)
    return f"{key}:\n{body}\n"


@dataclass(frozen=True)
class Case:
    name: str
    config: Path  # what `check -c` is given
    expect: str  # a fragment the problem line must contain
    line: int | None = None  # the line it must be reported at, when the case pins one


Builder = Callable[[Path], tuple[Path, str, int | None]]


def _write(root: Path, config: str, rules: dict[str, str | bytes] | None = None) -> Path:
    (root / "rules").mkdir(parents=True, exist_ok=True)
    for name, text in (rules if rules is not None else {"good.yaml": GOOD_RULES}).items():
        (root / "rules" / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    path = root / "config.yaml"
    path.write_bytes(config.encode() if isinstance(config, str) else config)
    return path


def _webhook_secret(secret_file: str) -> str:
    return f"{{backend: webhook, url: 'http://127.0.0.1:9/hook', secret_file: {secret_file}}}"


def _cases() -> dict[str, Builder]:
    def secret_dev_zero(r: Path):
        return _write(r, _config(crm=_webhook_secret("/dev/zero"))), "secret_file: cannot read /dev/zero", 2

    def secret_fifo(r: Path):
        os.mkfifo(r / "secret.fifo")
        return _write(r, _config(crm=_webhook_secret(str(r / "secret.fifo")))), "FIFO", 2

    def secret_directory(r: Path):
        return _write(r, _config(crm=_webhook_secret("/tmp"))), "directory", 2

    def secret_number(r: Path):
        return _write(r, _config(crm=_webhook_secret("5"))), "secret_file: must be the path of a file", 2

    def secret_list(r: Path):
        return _write(r, _config(crm=_webhook_secret("[a, b]"))), "secret_file: must be the path of a file", 2

    def config_dev_zero(r: Path):
        return Path("/dev/zero"), "not a regular file", 1

    def config_fifo(r: Path):
        os.mkfifo(r / "config.yaml")
        return r / "config.yaml", "FIFO", 1

    def config_directory(r: Path):
        (r / "config.yaml").mkdir()
        return r / "config.yaml", "directory", 1

    def config_huge(r: Path):
        return _write(r, _config() + "# " + "x" * (2 * 1024**2) + "\n"), "over the limit", 1

    def config_laughs(r: Path):
        return _write(r, _laughs(key="x_anchors") + _config()), "with aliases expanded", 6

    def rule_laughs(r: Path):
        return _write(r, _config(), {"laughs.yaml": _laughs(key="defs") + GOOD_RULES}), "with aliases expanded", 6

    def config_recursive_alias(r: Path):
        return _write(r, _config(extra="internal_domains: &a [*a]\n")), "recursive alias", 4

    def config_merge_recursion(r: Path):
        return _write(r, _config(extra="tags: &t {<<: *t}\n")), "recursive alias", 4

    def rule_recursive_when(r: Path):
        rules = "rules:\n  - name: Loop\n    when: &w {all: [*w]}\n    then: [stop]\n"
        return _write(r, _config(), {"loop.yaml": rules}), "recursive alias", 3

    def rule_merge_recursion(r: Path):
        rules = "rules:\n  - &r\n    <<: *r\n    name: Loop\n    then: [stop]\n"
        return _write(r, _config(), {"loop.yaml": rules}), "recursive alias", 3

    def config_unknown_tag(r: Path):
        return _write(r, _config(extra="spool: !foo var/spool\n")), "unknown tag '!foo'", 4

    def config_python_tag(r: Path):
        return _write(r, _config(extra="spool: !!python/object/apply:os.system [id]\n")), "unknown tag", 4

    def config_tag_of_another_kind(r: Path):
        return _write(r, _config(extra="exclude: !!seq x\n")), "the tag '!!seq' does not fit", 4

    def rule_tag_of_another_kind(r: Path):
        rules = "rules:\n  - name: Tagged\n    when: !!str {folder: VLeads}\n    then: [stop]\n"
        return _write(r, _config(), {"tag.yaml": rules}), "the tag '!!str' does not fit", 3

    def rule_unknown_tag(r: Path):
        rules = "rules:\n  - name: Tagged\n    when: !foo {folder: VLeads}\n    then: [stop]\n"
        return _write(r, _config(), {"tag.yaml": rules}), "unknown tag '!foo'", 3

    def config_bad_date(r: Path):
        return _write(r, _config(extra="since: 2026-02-30\n")), "not a valid timestamp", 4

    def config_bad_timestamp_tag(r: Path):
        return _write(r, _config(extra="since: !!timestamp 2026-99-99\n")), "not a valid timestamp", 4

    def rule_bad_timestamp(r: Path):
        rules = "rules:\n  - name: Dated\n    description: !!timestamp 2026-99-99\n    then: [stop]\n"
        return _write(r, _config(), {"date.yaml": rules}), "not a valid timestamp", 3

    def config_nul(r: Path):
        return _write(r, _config(extra="spool: var/\x00spool\n")), "U+0000", 4

    def config_control(r: Path):
        return _write(r, _config(extra="spool: var/\x07spool\n")), "U+0007", 4

    def rule_control(r: Path):
        rules = GOOD_RULES.replace("name: Leads", "name: Le\x1bads")
        return _write(r, _config(), {"ctl.yaml": rules}), "U+001B", 2

    def config_deep(r: Path):
        return _write(r, _config(extra="exclude: " + "[" * 50000 + "]" * 50000 + "\n")), "nesting", None

    def config_not_utf8(r: Path):
        return _write(r, _config().encode() + b"spool: \xff\xfe\n"), "not UTF-8", 1  # type: ignore[arg-type]

    def rules_too_big_together(r: Path):
        big = GOOD_RULES + "".join(f"# {i:06d} " + "x" * 200 + "\n" for i in range(1000))  # ~210 KB each
        return (
            _write(r, _config(), {f"{n}.yaml": big.replace("Leads", f"Leads{n}") for n in "abc"}),
            "the rule files together are over",
            1,
        )

    def rule_file_too_big(r: Path):
        return _write(r, _config(), {"big.yaml": GOOD_RULES + "#" * 300_000 + "\n"}), "over the limit", 1

    def tls_cert_dev_zero(r: Path):
        text = _config() + (
            "  - {name: bcc, type: smtp, listen: '127.0.0.1:2525', tls_cert: /dev/zero,\n"
            "     users: [{address: me@example.com, token: abcdefghijklmnopqrst}]}\n"
        )
        return _write(r, text), "/dev/zero is not a regular file", 9

    def huge_glob(r: Path):
        return _write(r, _config(rules='["/**/*.yaml"]')), "outside the config's folder", 3

    def escaping_glob(r: Path):
        return _write(r, _config(rules='["../../**/*.yaml"]')), "outside the config's folder", 3

    def rule_file_fifo(r: Path):
        path = _write(r, _config(rules="[rules/*.yaml, rules/pipe.yaml]"))
        os.mkfifo(r / "rules" / "pipe.yaml")
        return path, "pipe.yaml' is not a regular file", 3

    def rule_file_dev_zero(r: Path):
        path = _write(r, _config(rules="[rules/*.yaml, rules/zero.yaml]"))
        (r / "rules" / "zero.yaml").symlink_to("/dev/zero")
        return path, "zero.yaml' is not a regular file", 3

    def duplicate_top_key(r: Path):
        return _write(r, _config() + "crm: {backend: sql, url: 'sqlite:///var/other.db'}\n"), "duplicate key 'crm'", 9

    def duplicate_nested_key(r: Path):
        return (
            _write(r, _config(crm="{backend: sql, url: 'sqlite:///var/crm.db', url: 'sqlite:///x.db'}")),
            "duplicate key 'url'",
            2,
        )

    def ledger_mysql(r: Path):
        return _write(r, _config(ledger="mysql://u:pw@db/gw")), "'mysql' is not supported", 1

    def ledger_garbage(r: Path):
        return _write(r, _config(ledger="not a url")), "not a database URL", 1

    def crm_url_mysql(r: Path):
        return _write(r, _config(crm="{backend: sql, url: 'mysql://u:pw@db/crm'}")), "'mysql' is not supported", 2

    def crm_unknown_backend(r: Path):
        return _write(r, _config(crm="{backend: salesfarce, url: 'https://x'}")), "unknown backend 'salesfarce'", 2

    def crm_backend_path(r: Path):
        return _write(r, _config(crm="{backend: ../../x, url: 'https://x'}")), "unknown backend", 2

    def smtp_port_too_big(r: Path):
        text = (
            _config()
            + "  - {name: bcc, type: smtp, listen: '127.0.0.1:99999', users: [{address: me@example.com, token: abcdefghijklmnopqrst}]}\n"
        )
        return _write(r, text), "port 99999 is out of range", 9

    def smtp_listen_garbage(r: Path):
        text = (
            _config()
            + "  - {name: bcc, type: smtp, listen: 'localhost', users: [{address: me@example.com, token: abcdefghijklmnopqrst}]}\n"
        )
        return _write(r, text), "is not host:port", 9

    def web_port_zero(r: Path):
        return _write(r, _config(extra="web: {listen: '127.0.0.1:0'}\n")), "port 0 is out of range", 4

    def folder_dotdot(r: Path):
        return _write(r, _config(folders="[VLeads, ../../etc]")), "'..' is not allowed", 8

    def folder_absolute(r: Path):
        return _write(r, _config(folders="[/etc]")), "not an absolute path", 8

    def folder_imap_dotdot(r: Path):
        text = _config() + "  - {name: imap, type: imap, host: 127.0.0.1, username: u, password: p, folders: ['INBOX/../x']}\n"
        return _write(r, text), "'..' is not allowed", 9

    def rule_move_traversal(r: Path):
        rules = "rules:\n  - name: Away\n    when: {folder: VLeads}\n    then:\n      - move: ../../../../x\n"
        return _write(r, _config(), {"move.yaml": rules}), "'..' is not allowed", 5

    def rule_on_error_move_absolute(r: Path):
        rules = "rules:\n  - name: Away\n    then: [stop]\n    on_error: {move: /tmp/x}\n"
        return _write(r, _config(), {"move.yaml": rules}), "not an absolute path", 4

    return {k: v for k, v in locals().items() if callable(v)}


NAMES = tuple(_cases())


def generate(root: Path) -> list[Case]:
    """Write every case under `root` (one folder each) and describe them."""
    out = []
    for name, build in _cases().items():
        folder = root / name
        folder.mkdir(parents=True)
        config, expect, line = build(folder)
        out.append(Case(name, config, expect, line))
    return out


if __name__ == "__main__":
    for case in generate(Path(sys.argv[1])):
        print(f"{case.name}: {case.config} → {case.expect}")
