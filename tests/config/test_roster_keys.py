"""The keys naming a source's mailboxes (mailboxes, mailboxes_file, mailboxes_group): `check`
refuses a source that names none, or a mailboxes file it cannot read, at the key's FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures import Home

GRAPH = {
    "name": "online",
    "type": "graph",
    "tenant_id": "contoso",
    "client_id": "app-1",
    "client_secret": "s3cret",
}


def line_of(home: Home, text: str) -> int:
    lines = home.config_path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_a_graph_source_naming_no_mailboxes_is_refused_at_its_entry(tmp_path: Path) -> None:
    home = Home(tmp_path, extra={"sources": [GRAPH]})
    proc = home.cli("check")
    assert proc.returncode != 0
    where = f"{home.config_path}:{line_of(home, 'name: online')}:"
    out = proc.stdout + proc.stderr
    assert where in out and "sources.0: no mailboxes: give mailboxes" in out and "mailboxes_group" in out, out


def test_an_unreadable_mailboxes_file_is_refused_at_its_key(tmp_path: Path) -> None:
    home = Home(tmp_path, extra={"sources": [{**GRAPH, "mailboxes_file": "sales.txt"}]})
    proc = home.cli("check")
    out = proc.stdout + proc.stderr
    line = line_of(home, "mailboxes_file: sales.txt")
    assert proc.returncode != 0
    assert f"{home.config_path}:{line}:" in out and "sources.0.mailboxes_file" in out and "no such file" in out, out

    (tmp_path / "sales.txt").write_text("# the sales team\nanna@example.com\n")
    from gateway.config import load_config

    assert load_config(home.config_path).sources[0].mailboxes_file == "sales.txt"  # relative to the config's folder


def test_an_ews_source_without_a_list_still_watches_its_own_login(tmp_path: Path) -> None:
    from gateway.config import load_config

    ews = {"name": "exchange", "type": "ews", "url": "http://127.0.0.1:9/EWS/Exchange.asmx", "username": "svc@example.com"}
    home = Home(tmp_path, extra={"sources": [ews]})
    src = load_config(home.config_path).sources[0]
    assert src.mailboxes == [] and src.mailboxes_file is None and src.directory_refresh == 300
