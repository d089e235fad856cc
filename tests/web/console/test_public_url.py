"""`web.public_url`: the address the Outlook manifest names must be https; `check` says so."""

from __future__ import annotations

from tests.web.console.seeds import set_config


def test_check_refuses_a_public_url_that_is_not_https(home) -> None:
    set_config(home, web={"listen": "127.0.0.1:8025", "public_url": "http://crm-gateway.example.com"})
    res = home.cli("check")
    assert res.returncode == 1
    out = res.stdout + res.stderr
    assert "public_url" in out and "https://" in out, out

    set_config(home, web={"listen": "127.0.0.1:8025", "public_url": "https://crm-gateway.example.com/"})
    res = home.cli("check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert home.config().web.public_url == "https://crm-gateway.example.com"
