"""IMAP connection settings checked before anything is sent: plain text only to loopback."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.mailboxes.imap.config import ImapConfig
from gateway.mailboxes.imap.conn import check_security, default_port


def src(**kw: object) -> ImapConfig:
    base = {"name": "m", "type": "imap", "host": "127.0.0.1", "username": "u", "password": "p"}
    return ImapConfig.model_validate({**base, **kw})


def test_plain_text_is_refused_to_a_remote_server_unless_allowed() -> None:
    with pytest.raises(ConfigError, match=r"security: none sends the password in clear text.*192\.0\.2\.10 is not"):
        check_security(src(security="none", host="192.0.2.10"))
    check_security(src(security="none", host="192.0.2.10", allow_insecure=True))
    check_security(src(security="none", host="127.0.0.1"))
    check_security(src(security="none", host="::1"))
    check_security(src(security="tls", host="192.0.2.10"))


def test_a_source_needs_a_password_or_oauth2() -> None:
    with pytest.raises(ConfigError, match="needs password"):
        check_security(src(password=None))
    check_security(src(password=None, oauth2={"token_command": "printf tok"}))


def test_default_ports() -> None:
    assert default_port(src(security="tls")) == 993
    assert default_port(src(security="starttls")) == 143
    assert default_port(src(security="none", port=10143)) == 10143
