"""The admin's commands against a real gateway home: status, test-rules, process, reprocess,
forget, schema, logs and the progress bar."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from gateway.crm.base import PartyData
from gateway.crm.sql import SqlConnector
from tests.mail import make_mail


def _crm(home) -> SqlConnector:
    return SqlConnector(f"sqlite:///{home.root / 'var' / 'crm.db'}")


def _rules(home, text: str, keep: tuple[str, ...] = ("automated.yaml",)) -> None:
    for f in (home.root / "rules").glob("*.yaml"):
        if f.name not in keep:
            f.unlink()
    (home.root / "rules" / "custom.yaml").write_text(text)


@pytest.mark.parametrize("pick,expected", [("newest", "second"), ("all", "both")])
def test_two_contacts_sharing_an_address_follow_pick(home, pick, expected):
    crm = _crm(home)
    first = crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="One", emails=("ann@acme.example",)))
    second = crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="Two", emails=("ann@acme.example",)))
    crm.close()
    _rules(
        home,
        "rules:\n  - name: Sync\n    when: {folder: CRM sync}\n    then:\n"
        f"      - find: {{who: counterpart, kinds: [contact], pick: {pick}}}\n"
        "      - attach: {to: found, if_none: review}\n      - tag: [Synced]\n",
    )
    home.drop("CRM sync", make_mail(sender="Ann <ann@acme.example>"))
    assert home.run_once() == {"done": 1}
    links = sorted(l["id"] for l in home.dump()["emails"][0]["links"])
    want = {"second": [int(second.id)], "both": sorted([int(first.id), int(second.id)])}[expected]
    assert links == want


def test_test_rules_prints_the_plan_and_trace_and_writes_nothing(home):
    eml = home.root / "in.eml"
    eml.write_bytes(make_mail(sender="Bob Ray <bob@x.org>", subject="Quote"))
    res = home.cli("test-rules", str(eml), "--folder", "VLeads", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    plan = doc["plan"]
    assert plan["outcome"] == "done" and plan["touched"] == ["Leads folder"]
    assert [(c["kind"], c["address"]) for c in plan["creates"]] == [("lead", "bob@x.org")]
    assert plan["tags_add"] == ["CRM sync", "Synced"]
    assert any("VLeads" in step["detail"] for step in plan["trace"])
    human = home.cli("test-rules", str(eml), "--folder", "VLeads")
    assert "Leads folder" in human.stdout and "lead" in human.stdout
    crm = home.dump()
    assert crm["leads"] == [] and crm["emails"] == []
    assert not (home.root / "var" / "gateway.db").exists() or home.states() == {}


def test_process_runs_files_through_the_pipeline_once(home):
    files = []
    for i in range(3):
        f = home.root / f"m{i}.eml"
        f.write_bytes(make_mail(sender=f"Person {i} <p{i}@co{i}.example>"))
        files.append(str(f))
    res = home.cli("process", *files, "--folder", "VContacts", "--source", "local", "--json")
    assert res.returncode == 0, res.stderr
    states = [r["state"] for r in json.loads(res.stdout)["results"]]
    assert states == ["done", "done", "done"]
    assert len(home.dump()["contacts"]) == 3
    again = json.loads(home.cli("process", *files, "--folder", "VContacts", "--source", "local", "--json").stdout)
    assert [r["state"] for r in again["results"]] == ["done", "done", "done"]
    assert len(home.dump()["contacts"]) == 3 and len(home.dump()["emails"]) == 3


def test_process_of_a_missing_file_is_a_user_error(home):
    res = home.cli("process", str(home.root / "nope.eml"))
    assert res.returncode == 1 and "nope.eml" in res.stderr


def test_reprocess_review_after_the_crm_learned_the_person(home):
    home.drop("CRM sync", make_mail(sender="Stranger <who@nowhere.example>", message_id="<later@nowhere.example>"))
    assert home.run_once() == {"review": 1}
    crm = _crm(home)
    c = crm.create("contact", PartyData(kind="contact", first_name="Who", last_name="Ever", emails=("who@nowhere.example",)))
    crm.close()
    res = home.cli("reprocess", "--state", "review")
    assert res.returncode == 0, res.stderr
    assert "1: done" in res.stdout
    assert home.dump()["emails"][0]["links"] == [{"kind": "contact", "id": int(c.id)}]
    assert home.location_tags("CRM sync") == [["CRM sync", "Synced"]]


def test_forget_erases_what_the_gateway_made_and_the_ledger_traces(home):
    crm = _crm(home)
    kept = crm.create("contact", PartyData(kind="contact", first_name="Ann", last_name="Lee", emails=("ann@acme.example",)))
    crm.close()
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", message_id="<bob1@x.org>"))
    home.drop("VLeads", make_mail(sender="Ann Lee <ann@acme.example>", cc="bob@x.org", message_id="<ann1@acme.example>"))
    home.run_once()
    res = home.cli("forget", "bob@x.org", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [r["kind"] for r in doc["records_deleted"]] == ["lead"]
    after = home.dump()
    assert after["leads"] == []
    assert [c["id"] for c in after["contacts"]] == [int(kept.id)]
    # Bob's own mail is gone; Ann's mail (Bob in Cc) stays on Ann's record, a person made it
    assert [(e["message_id"], e["links"]) for e in after["emails"]] == [
        ("<ann1@acme.example>", [{"kind": "contact", "id": int(kept.id)}])
    ]
    trace = home.cli("explain", "<bob1@x.org>", "--json", check=True).stdout
    assert json.loads(trace)["state"] == "forgotten" and "bob@x.org" not in trace
    # the files are still in the mailbox: the person must not come back from them
    assert home.run_once() == {"forgotten": 2}
    assert home.dump()["leads"] == []


def test_status_shows_folders_counts_and_rules(home):
    home.drop("VLeads", make_mail(sender="Bob <bob@x.org>"))
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>"))
    home.run_once()
    doc = json.loads(home.cli("status", "--json", check=True).stdout)
    (src,) = doc["sources"]
    # the run is over: nothing is connected now; what the source was when it ran stays readable
    assert src["name"] == "local" and src["connected"] is False and src["last_connected"] is True
    assert src["mode"] == "push" and doc["running"] is False
    folders = {f["folder"]: f["counts"] for f in src["folders"]}
    assert folders["VLeads"] == {"done": 1} and folders["CRM sync"] == {"review": 1}
    assert "Leads folder" in doc["rules"]["rules"] and doc["rules"]["errors"] == []
    human = home.cli("status", check=True).stdout
    assert "VLeads" in human and "CRM sync" in human


def test_schema_is_json_schema_covering_the_actions(home):
    doc = json.loads(home.cli("schema", check=True).stdout)
    text = json.dumps(doc)
    assert doc.get("$schema", "").startswith("http") or "properties" in doc
    for word in ("find", "create", "attach", "on_error", "automated", "counterpart"):
        assert word in text


def test_logs_have_one_line_per_message_and_no_bodies_or_secrets(home, monkeypatch):
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["crm"]["password"] = "${GW_TEST_SECRET}"
    home.config_path.write_text(yaml.safe_dump(cfg))
    home.drop("VLeads", make_mail(sender="Bob <bob@x.org>", body="TOP-SECRET-BODY-TEXT"))
    home.drop("VLeads", make_mail(sender="Cy <cy@y.org>", body="TOP-SECRET-BODY-TEXT"))
    env = {**os.environ, "GW_TEST_SECRET": "hunter2-password"}
    res = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--once", "-c", str(home.config_path)],
        cwd=home.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stderr.splitlines() if "event=message" in l]
    assert len(lines) == 2 and all("result=done" in l for l in lines)
    assert "TOP-SECRET-BODY-TEXT" not in res.stderr + res.stdout
    assert "hunter2" not in res.stderr + res.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux `script` is needed to give the CLI a terminal")
def test_run_once_shows_a_progress_bar_on_a_terminal(home):
    for i in range(30):
        home.drop("VLeads", make_mail(sender=f"P{i} <p{i}@x{i}.example>"))
    cmd = f"{sys.executable} -m gateway run --once -c {home.config_path}"
    res = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        cwd=home.root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    assert res.returncode == 0, res.stdout
    assert "processing" in res.stdout and "30/30" in res.stdout
