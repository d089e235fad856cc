"""What the models alone do not see but `run` would refuse or misuse: checked at load time.

Each check names the config path (keys and indexes) it is about, so `load_config` reports
it as FILE:LINE:COL like any other mistake, and `check` and `run` refuse the same configs.
"""

from __future__ import annotations

import glob
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.logs import redact_url
from gateway.reading.foldernames import folder_problem

if TYPE_CHECKING:
    from gateway.config.model import Config

Found = tuple[tuple[Any, ...], str]  # (config path, message)

_BACKEND = re.compile(r"^[a-z][a-z0-9_]*$")


def db_url_problem(url: str, what: str) -> str | None:
    """A database URL the gateway can open: sqlite or postgresql, with its driver installed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    hint = "write e.g. sqlite:///var/gateway.db or postgresql+psycopg://user@host/db"
    try:
        u = make_url(url)
    except ArgumentError:
        return f"{what}: not a database URL: '{redact_url(url)}' ({hint})"
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"{what}: '{backend}' is not supported, only sqlite and postgresql ({hint})"
    try:
        u.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        return f"{what}: the driver of '{u.drivername}' is not installed ({exc}; {hint})"
    return None


def listen_problem(listen: str, what: str) -> str | None:
    """`host:port` with a port a socket can bind (1–65535); `[::1]:25` and `:25` too."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit():
        return f"{what}: '{listen}' is not host:port (e.g. 127.0.0.1:2525)"
    if not 1 <= int(port) <= 65535:
        return f"{what}: port {port} is out of range (1-65535)"
    if host.startswith("[") != host.endswith("]"):
        return f"{what}: '{listen}': an IPv6 address is written in brackets, e.g. [::1]:2525"
    return None


def backend_problem(backend: str) -> str | None:
    """A backend is a module of gateway.crm that registers a connector under that name."""
    import pkgutil

    import gateway.crm
    from gateway.crm.base import CONNECTORS, connector_backends

    if _BACKEND.match(backend) and CONNECTORS.get(backend) is not None:
        return None
    for module in pkgutil.iter_modules(gateway.crm.__path__):  # only now: to name the known ones
        CONNECTORS.get(module.name)
    return f"crm.backend: unknown backend '{backend}' (known: {', '.join(connector_backends())})"


def rule_pattern_problem(pattern: str, base_dir: Path) -> str | None:
    """A glob searches only under the config's folder: `/**/*.yaml` would walk the whole disk.

    A pattern's fixed part (up to its first wildcard) must lie under the config's folder once
    `..` and symlinks are resolved; a file named without wildcards may be anywhere."""
    full = Path(pattern).expanduser()
    full = full if full.is_absolute() else base_dir / full
    if not glob.has_magic(pattern):
        if full.exists() and not full.is_file():  # a FIFO, a device, a directory: never read
            return f"rules: '{pattern}' is not a regular file"
        return None
    fixed: list[str] = []
    for part in full.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    root = Path(*fixed).resolve() if fixed else Path("/")
    base = base_dir.resolve()
    if root == base or root.is_relative_to(base):
        return None
    return (
        f"rules: the pattern '{pattern}' searches {root}, outside the config's folder {base}: "
        f"a pattern searches only under it (name a rule file elsewhere without wildcards)"
    )


PEM_MAX = 1024**2


def pem_file_problem(path: Path, what: str) -> str | None:
    """TLS reads these through OpenSSL, unbounded: a FIFO or /dev/zero there would hang `run`.
    A missing file is left to the source, which says so when it starts."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{what}: {path} is not a regular file"
    if st.st_size > PEM_MAX:
        return f"{what}: {path} is {st.st_size} bytes, over the limit of {PEM_MAX} for a PEM file"
    return None


def _pem_files(config: Config) -> Iterator[Found]:
    for i, src in enumerate(config.sources):
        for key in ("ca_file", "tls_cert", "tls_key"):
            value = getattr(src, key, None)
            if value:  # smtp resolves against the config's folder; the others use the path as given
                path = config.resolve(value) if src.type == "smtp" else Path(value)
                p = pem_file_problem(path, f"sources.{i}.{key}")
                if p:
                    yield ("sources", i, key), p
        oauth2 = getattr(src, "oauth2", None)
        if oauth2 is not None and oauth2.ca_file:
            p = pem_file_problem(Path(oauth2.ca_file), f"sources.{i}.oauth2.ca_file")
            if p:
                yield ("sources", i, "oauth2", "ca_file"), p


def _folders(config: Config) -> Iterator[Found]:
    for i, src in enumerate(config.sources):
        maildir = src.type == "maildir"
        for j, name in enumerate(src.folders):
            problem = folder_problem(name, maildir=maildir)
            if problem:
                yield ("sources", i, "folders", j), problem


def _roster_files(config: Config) -> Iterator[Found]:
    """`mailboxes_file:` must be readable now: a source without its first list cannot start."""
    from gateway.mailboxes.roster import RosterError, read_roster_file

    for i, src in enumerate(config.sources):
        value = getattr(src, "mailboxes_file", None)
        if value:
            try:
                read_roster_file(config.resolve(value))
            except RosterError as exc:
                yield ("sources", i, "mailboxes_file"), f"sources.{i}.{exc}"


def problems(config: Config) -> list[Found]:
    """Every problem `run` would meet with this config, each with its config path."""
    found: list[Found] = []
    p = db_url_problem(config.ledger.url, "ledger.url")
    if p:
        found.append((("ledger", "url"), p))
    p = backend_problem(config.crm.backend)
    if p:
        found.append((("crm", "backend"), p))
    elif config.crm.backend == "sql":
        p = db_url_problem(config.crm.url, "crm.url")
        if p:
            found.append((("crm", "url"), p))
    for i, src in enumerate(config.sources):
        if src.type == "smtp":
            p = listen_problem(src.listen, f"sources.{i}.listen")
            if p:
                found.append((("sources", i, "listen"), p))
    if config.web is not None:
        p = listen_problem(config.web.listen, "web.listen")
        if p:
            found.append((("web", "listen"), p))
    found += _folders(config)
    found += _pem_files(config)
    found += _roster_files(config)
    for i, pattern in enumerate(config.rules):
        p = rule_pattern_problem(pattern, config.base_dir)
        if p:
            found.append((("rules", i), p))
    return found
