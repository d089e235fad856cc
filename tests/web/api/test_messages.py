"""Messages through the API: filters and paging, one message in full, the look-up by
Message-ID, errors as words; and the OpenAPI document lists every route there is."""

from __future__ import annotations

import json

from starlette.routing import Mount

from gateway.web.api import documented_path, route_table
from gateway.web.api.openapi import DOCUMENT
from tests.mail import make_mail
from tests.web.fixtures import drop_other, make_record, review_in_each, sign_in, web, web_home


def _home_with_mail(tmp_path):
    home = web_home(tmp_path)
    home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>", subject="Offer for pumps", message_id="<m1@x.org>"))
    home.drop("VContacts", make_mail(sender="Ann Lee <ann@acme.example>", subject="Meeting", message_id="<m2@acme.example>"))
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", subject="Pumps again", message_id="<m3@nowhere.example>"))
    home.run_once()
    drop_other(
        home, "VLeads", make_mail(sender="Cy <cy@z.example>", to="bob@example.com", subject="Pumps", message_id="<m4@z.example>")
    )
    home.run_once()
    assert home.states() == {"done": 3, "review": 1}
    return home


def test_filters_paging_and_one_message(tmp_path):
    home = _home_with_mail(tmp_path)
    with web(home) as client:
        sign_in(client, "root")

        def ids(**params):
            res = client.get("/api/v1/messages", params=params)
            assert res.status_code == 200, res.text
            return sorted(m["message_id"] for m in res.json()["messages"])

        assert ids() == ["<m1@x.org>", "<m2@acme.example>", "<m3@nowhere.example>", "<m4@z.example>"]
        assert ids(state="review") == ["<m3@nowhere.example>"]
        assert ids(state="done,review", source="other") == ["<m4@z.example>"]
        assert ids(folder="VContacts") == ["<m2@acme.example>"]
        assert ids(sender="ACME") == ["<m2@acme.example>"]
        assert ids(q="pumps") == ["<m1@x.org>", "<m3@nowhere.example>", "<m4@z.example>"]
        assert ids(since="2000-01-01", until="2000-01-02") == []
        assert ids(since="2000-01-01") == ids()
        page = client.get("/api/v1/messages", params={"limit": 2, "offset": 1}).json()
        assert page["total"] == 4 and len(page["messages"]) == 2 and page["offset"] == 1
        item = next(m for m in client.get("/api/v1/messages").json()["messages"] if m["message_id"] == "<m1@x.org>")
        assert {k: item[k] for k in ("subject", "sender", "state", "source", "account", "folder")} == {
            "subject": "Offer for pumps",
            "sender": "bob@x.org",
            "state": "done",
            "source": "local",
            "account": "me@example.com",  # a Maildir source's account: its owner
            "folder": "VLeads",
        }
        bad = client.get("/api/v1/messages", params={"state": "lost"})
        assert bad.status_code == 400 and "unknown state 'lost'" in bad.json()["error"]
        assert client.get("/api/v1/messages", params={"since": "yesterday"}).status_code == 400
        one = client.get(f"/api/v1/messages/{item['id']}").json()
        assert one["subject"] == "Offer for pumps" and one["trace"] and one["locations"][0]["folder"] == "VLeads"
        (lead,) = [r for r in one["crm_records"] if r["kind"] == "lead"]
        assert lead["name"] == "Bob Ray"
        assert client.get("/api/v1/messages/999").status_code == 404
        found = client.get("/api/v1/messages/lookup", params={"message_id": "m2@acme.example"})
        assert found.status_code == 200 and found.json()["id"] == next(
            m["id"] for m in client.get("/api/v1/messages").json()["messages"] if m["message_id"] == "<m2@acme.example>"
        )
        missing = client.get("/api/v1/messages/lookup", params={"message_id": "<never@x.org>"})
        assert missing.status_code == 404 and missing.json() == {
            "error": "no message with Message-ID <never@x.org>: the gateway has not handled it, and no mailbox of its sources holds it"
        }
        assert client.get("/api/v1/nothing/here").status_code == 404


def test_a_user_lists_only_their_mailbox(tmp_path):
    home = _home_with_mail(tmp_path)
    with web(home) as client:
        sign_in(client, "bob")
        listed = client.get("/api/v1/messages").json()
        assert [m["message_id"] for m in listed["messages"]] == ["<m4@z.example>"] and listed["total"] == 1
        assert client.get("/api/v1/messages", params={"source": "local"}).json()["messages"] == []


def test_openapi_lists_every_route(tmp_path):
    home = web_home(tmp_path)
    with web(home) as client:
        sign_in(client, "me")
        doc = client.get("/api/v1/openapi.json").json()
        assert doc["openapi"].startswith("3.") and doc == DOCUMENT
        with home.gateway() as gw:
            served = {(method.lower(), documented_path(path)) for method, path, _ in route_table(gw)}
        documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
        assert served == documented
        for path in ("/api/v1/status", "/api/v1/messages", "/api/v1/messages/{id}", "/api/v1/messages/lookup", "/api/v1/review",
                     "/api/v1/review/{id}/resolve", "/api/v1/review/{id}/create", "/api/v1/quarantine", "/api/v1/quarantine/{id}/retry",
                     "/api/v1/quarantine/retry", "/api/v1/crm/search", "/api/v1/link", "/api/v1/freebusy"):  # fmt: skip
            assert path in doc["paths"], path
        # one API mount, wherever the app nests it (the console's and the add-in's mounts beside it)
        assert [path for path in _mounts(client.app) if path.startswith("/api")] == ["/api/v1"]


def _mounts(app) -> list[str]:
    """The paths of every Mount of the app, and of the apps mounted in it."""
    out = []
    for r in getattr(app, "routes", []):
        if isinstance(r, Mount):
            out.append(r.path)
            out += _mounts(r.app)
    return out


def test_a_user_sees_only_the_crm_records_they_may_see_on_their_message(tmp_path):
    from gateway.admin import operations as admin

    home = web_home(tmp_path)
    review_in_each(home)
    bobs = make_record(home, "contact", "Bob", "Zuhidden", "private@nowhere.example", owner="bob@example.com")
    mine = make_record(home, "contact", "Me", "Own", "own@nowhere.example", owner="me@example.com")
    with home.gateway() as gw:  # an admin files me's message on both (the command line sees everything)
        admin.resolve_review(gw, "1", to=[f"contact:{bobs}", f"contact:{mine}"], force=True)
    assert home.states() == {"done": 1, "review": 1}
    with web(home) as client:
        sign_in(client, "root")
        everything = client.get("/api/v1/messages/1").json()
        assert sorted(r["record"] for r in everything["crm_records"]) == sorted([f"contact:{bobs}", f"contact:{mine}"])
    with web(home) as client:
        sign_in(client, "me")
        for doc in (
            client.get("/api/v1/messages/1").json(),
            client.get("/api/v1/messages/lookup", params={"message_id": "<r1@nowhere.example>"}).json(),
        ):
            assert [r["record"] for r in doc["crm_records"]] == [f"contact:{mine}"], doc
            assert f"contact:{bobs}" not in json.dumps(doc)  # nor in the history's words
            shown = json.dumps(doc["journal"])
            assert f'"id": "{mine}"' in shown or f'"id": {mine}' in shown
            assert f'"id": "{bobs}"' not in shown and f'"id": {bobs}' not in shown, shown
        page = client.get("/console/messages/1")
        assert page.status_code == 200 and "Zuhidden" not in page.text and f"contact:{bobs}" not in page.text
        assert f"contact:{mine}" in page.text


def test_a_message_in_two_mailboxes_shows_each_person_only_their_copy(tmp_path):
    home = web_home(tmp_path)
    raw = make_mail(
        sender="Who <who@nowhere.example>",
        to="me@example.com, bob@example.com",
        subject="to both",
        message_id="<both@nowhere.example>",
    )
    drop_other(home, "CRM sync", raw)  # bob's copy first: the message's first copy is his
    home.run_once()
    home.drop("CRM sync", raw)
    home.run_once()
    with web(home) as client:
        sign_in(client, "root")
        assert client.get("/api/v1/messages").json()["total"] == 1  # one message, a copy in each mailbox
        doc = client.get("/api/v1/messages/1").json()
        assert sorted(loc["account"] for loc in doc["locations"]) == ["bob@example.com", "me@example.com"]
        assert doc["item"]["account"] == "bob@example.com"
    with web(home) as client:
        sign_in(client, "me")
        doc = client.get("/api/v1/messages/1").json()
        assert [loc["account"] for loc in doc["locations"]] == ["me@example.com"]
        assert doc["item"]["account"] == "me@example.com"
        assert "bob@example.com" not in json.dumps(doc["history"])
        (listed,) = client.get("/api/v1/messages").json()["messages"]
        assert listed["account"] == "me@example.com" and listed["source"] == "local"
        (queued,) = client.get("/review.json").json()["review"]
        assert queued["account"] == "me@example.com" and queued["source"] == "local"
        page = client.get("/console/messages/1")
        assert page.status_code == 200 and "other:bob@example.com" not in page.text


def test_a_users_review_candidates_are_only_records_they_may_see(tmp_path):
    home = web_home(tmp_path)
    bobs = make_record(home, "contact", "Bob", "Zuhidden", "pal@nowhere.example", owner="bob@example.com")
    shared = make_record(home, "contact", "Sam", "Shared", "pal@nowhere.example")
    home.drop("CRM sync", make_mail(sender="Pal <pal@nowhere.example>", subject="hi", message_id="<p1@nowhere.example>"))
    home.run_once()
    assert home.states() == {"review": 1}  # two contacts with that address: a person picks
    with web(home) as client:
        sign_in(client, "root")
        (item,) = client.get("/api/v1/review").json()["review"]
        assert sorted(c["record"] for c in item["candidates"]) == sorted([f"contact:{bobs}", f"contact:{shared}"])
    with web(home) as client:
        sign_in(client, "me")
        (item,) = client.get("/api/v1/review").json()["review"]
        assert [c["record"] for c in item["candidates"]] == [f"contact:{shared}"]
        doc = client.get("/api/v1/messages/1").json()
        assert "Zuhidden" not in json.dumps(doc)
        assert "Zuhidden" not in client.get("/console/review").text
        assert "Zuhidden" not in client.get("/console/messages/1").text
