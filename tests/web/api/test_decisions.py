"""Review, quarantine and link through the API, as an admin and as the owner of one mailbox:
what the CRM and the ledger show afterwards."""

from __future__ import annotations

import yaml

from tests.mail import make_mail
from tests.web.fixtures import drop_other, make_record, review_in_each, sign_in, web, web_home


def _links(home, kind: str, rid: str) -> list[str]:
    """The Message-IDs of the mails the CRM links to a record."""
    dump = home.dump()
    ids = {e["id"]: e["message_id"] for e in dump["emails"]}
    return sorted(ids[e["id"]] for e in dump["emails"] for link in e["links"] if link == {"kind": kind, "id": int(rid)})


def test_admin_sees_candidates_with_names_and_resolves_a_review_item(tmp_path):
    home = web_home(tmp_path)
    ann = make_record(home, "contact", "Ann", "Who", "who@nowhere.example", owner="me@example.com")
    twin = make_record(home, "contact", "Ann", "Twin", "who@nowhere.example")
    other = make_record(home, "lead", "Zed", "Else", "zed@else.example")
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", message_id="<rv@nowhere.example>"))
    home.run_once()
    assert home.states() == {"review": 1}  # two contacts have the address: a person picks
    with web(home) as client:
        token = sign_in(client, "root")
        (item,) = client.get("/api/v1/review").json()["review"]
        assert item["sender"] == "who@nowhere.example"
        assert item["candidates"] == [
            {"record": f"contact:{ann}", "kind": "contact", "id": ann, "name": "Ann Who", "matched": ["who@nowhere.example"]},
            {"record": f"contact:{twin}", "kind": "contact", "id": twin, "name": "Ann Twin", "matched": ["who@nowhere.example"]},
        ]
        h = {"X-CSRF-Token": token}
        assert client.post("/api/v1/review/1/resolve", json={"record": "lead:9999"}, headers=h).status_code == 404
        # any record, not only a candidate: the admin picks the lead
        res = client.post(f"/api/v1/review/{item['id']}/resolve", json={"record": f"lead:{other}"}, headers=h)
        assert res.status_code == 200, res.text
        assert res.json()["state"] == "done" and res.json()["outside_candidates"] == [f"lead:{other}"]
        again = client.post(f"/api/v1/review/{item['id']}/resolve", json={"record": f"lead:{other}"}, headers=h)
        assert again.status_code == 409 and "not review" in again.json()["error"]
        assert client.post("/api/v1/review/99/resolve", json={"record": f"lead:{other}"}, headers=h).status_code == 404
        assert client.post("/api/v1/review/1/resolve", json={}, headers=h).status_code == 400
        doc = client.get(f"/api/v1/messages/{item['id']}").json()
        assert doc["state"] == "done" and [r["record"] for r in doc["crm_records"]] == [f"lead:{other}"]
        assert ["Message-ID", "<rv@nowhere.example>"] in doc["headers"]
    assert _links(home, "lead", other) == ["<rv@nowhere.example>"]
    assert _links(home, "contact", ann) == []


def test_a_user_sees_only_their_mailbox_and_gets_403_on_another_404_on_others_records_and_message_ids(tmp_path):
    home = web_home(tmp_path)
    review_in_each(home)
    shared = make_record(home, "contact", "Sam", "Shared", "sam@shared.example")  # no owner: everyone's
    bobs = make_record(home, "contact", "Bo", "Private", "bo@private.example", owner="bob@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        assert [i["id"] for i in client.get("/api/v1/review").json()["review"]] == [1]
        assert [m["id"] for m in client.get("/api/v1/messages").json()["messages"]] == [1]
        assert client.get("/api/v1/messages/1").status_code == 200
        theirs = client.get("/api/v1/messages/2")
        assert theirs.status_code == 403 and "mailbox you do not own" in theirs.json()["error"]
        # another's Message-ID or record id is as unknown as one that never was: 404, the same words
        unknown = client.get("/api/v1/messages/lookup", params={"message_id": "<r2@nowhere.example>"})
        assert unknown.status_code == 404 and unknown.json() == {
            "error": "no message with Message-ID <r2@nowhere.example> in the mailboxes you own, handled or not"
        }
        assert [s["name"] for s in client.get("/api/v1/status").json()["sources"]] == ["local"]
        assert [r["id"] for r in client.get("/review.json").json()["review"]] == [1]
        h = {"X-CSRF-Token": token}
        assert client.post("/api/v1/review/2/resolve", json={"record": f"contact:{shared}"}, headers=h).status_code == 403
        refused = client.post("/api/v1/review/1/resolve", json={"record": f"contact:{bobs}"}, headers=h)
        assert refused.status_code == 404 and refused.json() == {"error": f"no contact with id {bobs} in the CRM"}
        gone = client.post("/api/v1/review/1/resolve", json={"record": "contact:9999"}, headers=h)
        assert gone.status_code == 404 and gone.json() == {"error": "no contact with id 9999 in the CRM"}
        link = client.post("/api/v1/link", json={"record": f"contact:{bobs}", "message": 1}, headers=h)
        assert link.status_code == 404 and link.json() == {"error": f"no contact with id {bobs} in the CRM"}
        link = client.post("/api/v1/link", json={"record": f"contact:{shared}", "message_id": "<r2@nowhere.example>"}, headers=h)
        assert link.status_code == 404 and link.json() == {
            "error": "no message with Message-ID <r2@nowhere.example> in the mailboxes you own, handled or not"
        }
        names = [r["name"] for r in client.get("/api/v1/crm/search", params={"q": "private"}).json()["records"]]
        assert names == []
        ok = client.post("/api/v1/review/1/resolve", json={"record": f"contact:{shared}"}, headers=h)
        assert ok.status_code == 200, ok.text
    assert _links(home, "contact", shared) == ["<r1@nowhere.example>"]
    assert _links(home, "contact", bobs) == []
    with web(home) as client:
        sign_in(client, "bob")
        assert [i["id"] for i in client.get("/api/v1/review").json()["review"]] == [2]
        assert client.get("/api/v1/messages/1").status_code == 403


def test_quarantine_retry_one_and_by_reason(tmp_path):
    home = web_home(tmp_path)
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["max_message_size"] = "2KB"
    home.config_path.write_text(yaml.safe_dump(cfg))
    big = [("a.bin", "application/octet-stream", b"x" * 5000)]
    home.drop("VLeads", make_mail(sender="Big Ben <ben@big.example>", attachments=big, message_id="<q1@big.example>"))
    home.drop("VLeads", make_mail(sender="Big Bo <bo@big.example>", attachments=big, message_id="<q2@big.example>"))
    drop_other(
        home,
        "VLeads",
        make_mail(sender="Big Al <al@big.example>", to="bob@example.com", attachments=big, message_id="<q3@big.example>"),
    )
    home.run_once()
    assert home.states() == {"quarantined": 3}
    cfg["max_message_size"] = "10MB"
    home.config_path.write_text(yaml.safe_dump(cfg))
    with web(home) as client:
        token = sign_in(client, "me")
        listed = client.get("/api/v1/quarantine").json()["quarantined"]
        assert sorted(q["message_id"] for q in listed) == ["<q1@big.example>", "<q2@big.example>"]
        first = next(q for q in listed if q["message_id"] == "<q1@big.example>")
        res = client.post(f"/api/v1/quarantine/{first['id']}/retry", json={}, headers={"X-CSRF-Token": token})
        assert res.status_code == 200, res.text
        assert res.json()["retried"] == [{"id": first["id"], "state": "done"}]
        reason = next(q for q in listed if q["message_id"] == "<q2@big.example>")["reason"]
        res = client.post("/api/v1/quarantine/retry", json={"reason": reason}, headers={"X-CSRF-Token": token})
        assert [r["state"] for r in res.json()["retried"]] == ["done"]  # bob's stays: not hers
        assert client.post("/api/v1/quarantine/retry", json={"reason": "no such"}, headers={"X-CSRF-Token": token}).json() == {
            "retried": []
        }
    assert sorted(lead["emails"][0] for lead in home.dump()["leads"]) == ["ben@big.example", "bo@big.example"]
    assert home.states() == {"done": 2, "quarantined": 1}


def test_link_by_message_id_is_idempotent(tmp_path):
    home = web_home(tmp_path)
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", message_id="<lk@x.org>"))
    home.run_once()
    assert home.states() == {"done": 1}
    acct = make_record(home, "contact", "Car", "Ol", "carol@y.example", owner="me@example.com")
    with web(home) as client:
        token = sign_in(client, "me")
        for _ in range(2):
            res = client.post(
                "/api/v1/link", json={"record": f"contact:{acct}", "message_id": "<lk@x.org>"}, headers={"X-CSRF-Token": token}
            )
            assert res.status_code == 200, res.text
            assert res.json()["record"] == f"contact:{acct}"
        doc = client.get("/api/v1/messages/lookup", params={"message_id": "lk@x.org"}).json()
        assert f"contact:{acct}" in [r["record"] for r in doc["crm_records"]]
        unknown = client.post(
            "/api/v1/link", json={"record": f"contact:{acct}", "message_id": "<nope@x.org>"}, headers={"X-CSRF-Token": token}
        )
        assert unknown.status_code == 404
    dump = home.dump()
    assert len(dump["emails"]) == 1
    assert dump["emails"][0]["links"].count({"kind": "contact", "id": int(acct)}) == 1
    assert _links(home, "contact", acct) == ["<lk@x.org>"]
