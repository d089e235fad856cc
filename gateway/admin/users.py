"""The web users `crm-gateway user add|remove` keep: a YAML file (`web.users_file`, mode 0600)
beside the config's own `web.users`, so adding a person needs neither a hand edit of the config
(whose comments a rewrite would lose) nor a restart.

The file holds the same entries as `web.users` (name, argon2 `password_hash`, role, addresses)
and is read again whenever it changed, as the tokens file is. A name the config lists is the
config's: `user add` refuses it, and a same-named entry in the file is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from gateway.config.model import WebUser
from gateway.errors import Permanent


class UserStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._users: list[WebUser] = []

    def users(self) -> list[WebUser]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._users = None, []
            return []
        if self._seen == (st.st_mtime_ns, st.st_size):
            return list(self._users)
        try:
            doc = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            users = [WebUser.model_validate(u) for u in doc.get("users") or []]
        except (OSError, yaml.YAMLError, ValidationError, AttributeError, TypeError) as exc:
            raise Permanent(f"{self.path}: cannot read the web users: {exc}") from exc
        self._seen, self._users = (st.st_mtime_ns, st.st_size), users
        return list(users)

    def put(self, user: WebUser) -> bool:
        """Add `user`, or replace the entry of the same name; True when it replaced one."""
        kept = [u for u in self.users() if u.name != user.name]
        replaced = len(kept) != len(self._users)
        self._write([*kept, user])
        return replaced

    def remove(self, name: str) -> bool:
        users = self.users()
        kept = [u for u in users if u.name != name]
        if len(kept) != len(users):
            self._write(kept)
        return len(kept) != len(users)

    def _write(self, users: list[WebUser]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        doc = {"users": [u.model_dump(exclude_none=True) for u in users]}
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# web users kept by `crm-gateway user add|remove`; the config's web.users count too\n")
            yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
        os.replace(tmp, self.path)


def all_users(configured: list[WebUser], store: UserStore) -> list[WebUser]:
    """The config's users, then the file's whose names the config does not hold."""
    names = {u.name for u in configured}
    return [*configured, *(u for u in store.users() if u.name not in names)]
