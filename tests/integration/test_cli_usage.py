"""How the command line presents itself: exit codes of bad arguments, help text, --version,
the default folder of test-rules, and `check`'s warning about a folder no source watches."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import gateway
from tests.mail import make_mail

COMMANDS = [
    [],
    ["run"],
    ["check"],
    ["schema"],
    ["test-rules"],
    ["process"],
    ["status"],
    ["explain"],
    ["reprocess"],
    ["forget"],
    ["quarantine"],
    ["quarantine", "list"],
    ["pimsync"],
    ["pimsync", "conflicts"],
    ["quarantine", "show"],
    ["quarantine", "retry"],
    ["review"],
    ["review", "list"],
    ["review", "resolve"],
    ["review", "create"],
    ["crm"],
    ["crm", "dump"],
    ["freebusy"],
]


def _gw(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    "args,says",
    [
        (["run", "--bogus"], "No such option: --bogus"),
        (["explain"], "Missing argument 'ID|MESSAGE-ID'"),
        (["reprocess", "--state", "review", "--since", "yesterday-ish"], "Invalid value for '--since'"),
        (["no-such-command"], "No such command"),
        (["freebusy", "ann@example.com", "--to", "2026-12-07T17:00"], "Missing option '--from'"),
    ],
)
def test_bad_arguments_are_a_user_error_exit_1(args, says):
    res = _gw(*args)
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert says in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_help_names_no_python_types_and_every_option_has_help():
    for cmd in COMMANDS:
        res = _gw(*cmd, "--help")
        assert res.returncode == 0, (cmd, res.stderr)
        text = res.stdout
        for python_name in ("<str>", "<bool>", "<path>", "<list[", "{", "IDENT", "<datetime>"):
            assert python_name not in text, (cmd, python_name, text)
        options = text.split("Options:", 1)[1].split("Commands:", 1)[0]
        for line in options.splitlines():
            if line.startswith("  -"):
                assert re.match(r"  -\S.*?\S {2,}\S", line), (cmd, line)  # names, then help text
    usage = _gw("review", "resolve", "--help").stdout
    assert "Usage: " in usage and "resolve [OPTIONS] ID|MESSAGE-ID" in usage
    assert "--to KIND:ID" in usage and "--force" in usage
    assert "retry [OPTIONS] [ID|MESSAGE-ID]" in _gw("quarantine", "retry", "--help").stdout
    assert "process [OPTIONS] FILE.eml..." in _gw("process", "--help").stdout
    assert "freebusy [OPTIONS] ADDRESS..." in _gw("freebusy", "--help").stdout


def test_version():
    res = _gw("--version")
    assert res.returncode == 0
    assert res.stdout == f"crm-gateway {gateway.__version__}\n"


def test_test_rules_without_folder_says_it_assumes_inbox(home):
    eml = home.root / "in.eml"
    eml.write_bytes(make_mail(sender="Bob Ray <bob@x.org>"))
    res = home.cli("test-rules", str(eml), "--json")
    assert res.returncode == 0, res.stderr
    assert "note: no --folder given: as if found in INBOX (watched folders: VLeads, VContacts, VAccounts, CRM sync)" in res.stderr
    assert '"folder": "INBOX"' in res.stdout
    quiet = home.cli("test-rules", str(eml), "--folder", "VLeads", "--json")
    assert quiet.returncode == 0 and "note:" not in quiet.stderr


def test_check_warns_about_a_folder_no_source_watches(home):
    (home.root / "rules" / "custom.yaml").write_text(
        "rules:\n  - name: Typo\n    when:\n      all:\n        - folder: [VLeads, VLeds]\n    then:\n      - tag: [X]\n"
    )
    res = home.cli("check")
    assert res.returncode == 0, res.stderr
    assert (
        "rules/custom.yaml:5:28: warning: folder 'VLeds' is not watched by any source (did you mean 'VLeads'?); "
        "watched folders: VLeads, VContacts, VAccounts, CRM sync"
    ) in res.stderr
    assert "'VLeads' is not watched" not in res.stderr
    assert "ok:" in res.stderr
