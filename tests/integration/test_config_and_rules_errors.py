"""Bad config and bad rules: exit 1 naming file, line and key; a running gateway keeps going."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.mail import make_mail
from tests.waiting import wait_for as _wait


def test_bad_config_exits_1_naming_file_line_and_key(home):
    home.config_path.write_text(
        "crm: {backend: sql, url: 'sqlite:///var/crm.db'}\n"
        "workrs: 3\n"
        "sources:\n"
        "  - {name: local, type: maildir, path: var/mail, folders: [VLeads], pol_interval: 2}\n"
    )
    res = home.cli("check")
    assert res.returncode == 1
    assert f"{home.config_path}:2:1: unknown key 'workrs' (did you mean 'workers'?)" in res.stderr
    assert f"{home.config_path}:4:69: unknown key 'sources.0.pol_interval' (did you mean 'poll_interval'?)" in res.stderr


def test_missing_environment_variable_is_named(home, monkeypatch):
    text = home.config_path.read_text().replace("sqlite:///var/crm.db", "${CRM_URL_FOR_TEST}")
    home.config_path.write_text(text)
    res = home.cli("check")
    assert res.returncode == 1 and "CRM_URL_FOR_TEST" in res.stderr


def test_bad_rules_exit_1_with_every_error_positioned(home):
    (home.root / "rules" / "zz-bad.yaml").write_text(
        "rules:\n"
        "  - name: Typo\n"
        "    when: {folder: VLeads}\n"
        "    then:\n"
        "      - atach: {}\n"
        "  - name: Typo\n"
        "    when: {subject: {regex: '('}}\n"
        "    then: [stop]\n"
    )
    res = home.cli("check")
    assert res.returncode == 1
    path = "rules/zz-bad.yaml"  # shown relative to the config file's folder, as an admin edits it
    assert f"{path}:5:9: unknown action 'atach' (did you mean 'attach'?)" in res.stderr
    assert "duplicate rule name 'Typo'" in res.stderr
    assert f"{path}:7:" in res.stderr


def test_check_passes_on_the_shipped_example(home):
    res = home.cli("check")
    assert res.returncode == 0, res.stderr
    assert "ok:" in res.stderr


def test_bad_edit_to_the_rules_of_a_running_gateway_keeps_the_old_rules(home):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
        cwd=home.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        home.drop("VLeads", make_mail(sender="One Person <one@a.example>"))
        assert _wait(lambda: len(home.dump()["leads"]) == 1), "first mail not processed"
        folders = home.root / "rules" / "folders.yaml"
        good = folders.read_text()
        folders.write_text(good + "\n  - name: broken\n    then: [{atach: {}}]\n")
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: _rule_errors(home)), "the bad edit was not reported in status"
        home.drop("VLeads", make_mail(sender="Two Person <two@b.example>"))
        assert _wait(lambda: len(home.dump()["leads"]) == 2), "gateway stopped processing after a bad edit"
        assert proc.poll() is None
        folders.write_text(good)
        assert _wait(lambda: not _rule_errors(home)), "the fixed rules were not taken back"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "rules not reloaded" in err and "atach" in err


def _rule_errors(home) -> list[str]:
    res = home.cli("status", "--json")
    return json.loads(res.stdout)["rules"]["errors"] if res.returncode == 0 else []
