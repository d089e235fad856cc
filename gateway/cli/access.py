"""`crm-gateway user add|list|remove` and `token add|list|remove`: who may use the console and the API
(gateway/admin/access.py does the hashing and keeps the tokens; this module asks and prints)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.app import ConfigOpt, app, config_at, err, guarded, out, print_json
from gateway.cli.help import PlainCommand
from gateway.errors import Permanent

if TYPE_CHECKING:
    from gateway.config import Config, WebConfig

user_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="People who may sign in to the console and the API.")
token_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="API tokens (Authorization: Bearer).")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

RoleOpt = Annotated[str | None, typer.Option("--role", metavar="ROLE", help="admin | user [user]")]
AddressOpt = Annotated[
    list[str] | None, typer.Option("--address", metavar="ADDR", help="the person's mail address (their mailboxes); may repeat")
]


def _web(config: ConfigOpt) -> tuple[Config, WebConfig]:
    """The config and its `web` section (its defaults when the config has none)."""
    from gateway.config import WebConfig

    cfg = config_at(config)
    return cfg, cfg.web or WebConfig()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise Permanent("no terminal to ask the password on: give --password-stdin and the password on stdin")
    first = typer.prompt("password", hide_input=True, err=True)
    if typer.prompt("the same again", hide_input=True, err=True) != first:
        raise Permanent("the two passwords differ; nothing was made")
    return str(first)


@user_app.command("add", cls=PlainCommand)
@guarded
def user_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the name to sign in with")],
    role: RoleOpt = None,
    address: AddressOpt = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin (one line)")] = False,
    print_only: Annotated[
        bool, typer.Option("--print", help="print the entry to paste under web.users instead of writing it")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Add a person (argon2 hash of a password asked twice) to web.users_file, or replace
    the entry of the same name; they may sign in at once, no restart."""
    from gateway.admin.access import user_entry, user_yaml
    from gateway.admin.users import UserStore
    from gateway.config.model import WebUser

    if print_only:
        entry = user_entry(name, _password(password_stdin), role or "user", list(address or []))
        out.print(user_yaml(entry), markup=False, highlight=False, end="")
        err.print("paste it under `web:` → `users:` in the config; the gateway reads the config at start", markup=False)
        return
    cfg, web = _web(config)
    if any(u.name == name for u in web.users):
        raise Permanent(f"{name} is in the config's web.users: change that entry there, or remove it there first")
    entry = user_entry(name, _password(password_stdin), role or "user", list(address or []))
    path = cfg.resolve(web.users_file)
    replaced = UserStore(path).put(WebUser.model_validate(entry))
    did = "replaced" if replaced else "added"
    err.print(f"{did} {name} ({entry['role']}) in {path}; they may sign in now", markup=False)


@user_app.command("list", cls=PlainCommand)
@guarded
def user_list(config: ConfigOpt = None) -> None:
    """The people who may sign in: name, role, addresses, and where each is kept (never a hash)."""
    from gateway.admin.users import UserStore, all_users

    cfg, web = _web(config)
    names = {u.name for u in web.users}
    listed = [
        (u, "config" if u.name in names else "users_file") for u in all_users(web.users, UserStore(cfg.resolve(web.users_file)))
    ]
    print_json(
        {
            "users": [
                {
                    "name": u.name,
                    "role": u.role,
                    "addresses": list(u.addresses),
                    "password": u.password_hash is not None,
                    "kept_in": where,
                }
                for u, where in listed
            ]
        }
    )


@user_app.command("remove", cls=PlainCommand)
@guarded
def user_remove(name: Annotated[str, typer.Argument(metavar="NAME")], config: ConfigOpt = None) -> None:
    """Remove a person `user add` added: their sessions and API token end at their next request."""
    from gateway.admin.users import UserStore

    cfg, web = _web(config)
    if not UserStore(cfg.resolve(web.users_file)).remove(name):
        if any(u.name == name for u in web.users):
            raise Permanent(f"{name} is in the config's web.users: remove that entry there")
        raise Permanent(f"no web user named {name}")
    err.print(f"removed {name}: their sessions and their API token stop at their next request", markup=False)


@token_app.command("add", cls=PlainCommand)
@guarded
def token_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="a web user's name (the token acts as them), or a new name")],
    role: RoleOpt = None,
    address: AddressOpt = None,
    days: Annotated[
        float | None, typer.Option("--days", metavar="N", help="the token stops working after N days [never]")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Make an API token and print it once (only its hash is kept, in web.tokens_file)."""
    from gateway.admin.access import TokenStore
    from gateway.admin.users import UserStore, all_users

    cfg, web = _web(config)
    user = next((u for u in all_users(web.users, UserStore(cfg.resolve(web.users_file))) if u.name == name), None)
    if user is not None and (role or address):
        raise Permanent(f"{name} is a web user: the token has their role and addresses; give no --role or --address")
    if user is None and role is None:
        raise Permanent(f"{name} is not in web.users: give --role admin|user (and --address for a user)")
    store = TokenStore(cfg.resolve(web.tokens_file))
    token = store.add(
        name, user.role if user else str(role), list(user.addresses if user else address or []), days, of_user=user is not None
    )
    out.print(token, markup=False, highlight=False)
    made = store.check(token)
    until = f", until {made.expires_at}" if made is not None and made.expires_at else ""
    err.print(f"the token of {name}{until}: shown this once; send it as `Authorization: Bearer <token>`", markup=False)


@token_app.command("list", cls=PlainCommand)
@guarded
def token_list(config: ConfigOpt = None) -> None:
    """The API tokens' names, roles and when they were made (never the tokens)."""
    from gateway.admin.access import TokenStore

    cfg, web = _web(config)
    store = TokenStore(cfg.resolve(web.tokens_file))
    print_json(
        {
            "tokens": [
                {
                    "name": r.name,
                    "role": r.role,
                    "addresses": list(r.addresses),
                    "created_at": r.created_at,
                    "expires_at": r.expires_at or None,
                    "expired": r.expired(),
                }
                for r in store.records()
            ]
        }
    )


@token_app.command("remove", cls=PlainCommand)
@guarded
def token_remove(name: Annotated[str, typer.Argument(metavar="NAME")], config: ConfigOpt = None) -> None:
    """Revoke the API token of NAME at once."""
    from gateway.admin.access import TokenStore

    cfg, web = _web(config)
    if not TokenStore(cfg.resolve(web.tokens_file)).remove(name):
        raise Permanent(f"no API token named {name}")
    err.print(f"removed the token of {name}", markup=False)
