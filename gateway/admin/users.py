"""The web users `crm-gateway user add|remove` keep: a YAML file (`web.users_file`, mode 0600)
beside the config's own `web.users`, so adding a person needs neither a hand edit of the config
(whose comments a rewrite would lose) nor a restart.

The file holds the same entries as `web.users` (name, argon2 `password_hash`, role, addresses)
and is read again whenever it changed, as the tokens file is. A name the config lists is the
config's: `user add` refuses it, and a same-named entry in the file is ignored.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from gateway.admin.kept_file import KeptFile
from gateway.config.model import WebUser


class UserStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = KeptFile(path, _parse_users, "web users")

    def users(self) -> list[WebUser]:
        return self._file.read()

    def put(self, user: WebUser) -> bool:
        """Add `user`, or replace the entry of the same name; True when it replaced one."""
        users = self.users()
        kept = [u for u in users if u.name != user.name]
        self._write([*kept, user])
        return len(kept) != len(users)

    def remove(self, name: str) -> bool:
        users = self.users()
        kept = [u for u in users if u.name != name]
        if len(kept) != len(users):
            self._write(kept)
        return len(kept) != len(users)

    def _write(self, users: list[WebUser]) -> None:
        doc = {"users": [u.model_dump(exclude_none=True) for u in users]}
        head = "# web users kept by `crm-gateway user add|remove`; the config's web.users count too\n"
        self._file.write(head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def _parse_users(text: str) -> list[WebUser]:
    try:
        doc = yaml.safe_load(text) or {}
        return [WebUser.model_validate(u) for u in doc.get("users") or []]
    except (yaml.YAMLError, ValidationError) as exc:  # as ValueError: KeptFile says which file
        raise ValueError(str(exc)) from exc


def all_users(configured: list[WebUser], store: UserStore) -> list[WebUser]:
    """The config's users, then the file's whose names the config does not hold."""
    names = {u.name for u in configured}
    return [*configured, *(u for u in store.users() if u.name not in names)]
