"""The web face of a running gateway (`run` with `web.listen`), over real HTTP: sign in, read
the review list, resolve an item through the API, and the CRM holds the link."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import yaml

from tests.mail import make_mail
from tests.waiting import wait_for
from tests.web.fixtures import PASSWORD, make_record, web_home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_running_gateway_serves_the_api_behind_sign_in(tmp_path):
    home = web_home(tmp_path)
    port = _free_port()
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["web"]["listen"] = f"127.0.0.1:{port}"
    home.config_path.write_text(yaml.safe_dump(cfg))
    lead = make_record(home, "lead", "Zed", "Else", "zed@else.example", owner="me@example.com")
    home.drop("CRM sync", make_mail(sender="Who <who@nowhere.example>", message_id="<served@nowhere.example>"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "-c", str(home.config_path)],
        cwd=home.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            assert wait_for(lambda: client.get("/healthz").text == "ok", timeout=120), "the web face did not come up"
            assert client.get("/api/v1/review").status_code == 401
            res = client.post("/signin", data={"name": "me", "password": PASSWORD, "next": "/"})
            assert res.status_code == 303
            assert wait_for(lambda: len(client.get("/api/v1/review").json()["review"]) == 1)
            (item,) = client.get("/api/v1/review").json()["review"]
            token = client.get("/api/v1/me").json()["csrf_token"]
            done = client.post(
                f"/api/v1/review/{item['id']}/resolve", json={"record": f"lead:{lead}"}, headers={"X-CSRF-Token": token}
            )
            assert done.status_code == 200, done.text
            assert wait_for(lambda: client.get(f"/api/v1/messages/{item['id']}").json()["state"] == "done")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    dump = home.dump()
    (email,) = dump["emails"]
    assert email["message_id"] == "<served@nowhere.example>" and email["links"] == [{"kind": "lead", "id": int(lead)}]
