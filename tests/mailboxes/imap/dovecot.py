"""A private Dovecot for the IMAP tests and benchmarks: unprivileged, 127.0.0.1, a free port.

`Dovecot(...)` writes its config into its own directory (TESTING.md), starts `dovecot -F`
as `nobody` when we are root (Dovecot refuses to run as root), and offers the helpers a test
needs to act like a person's mail client: append, move, read flags, stop/start, recreate.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
default_internal_user = {u}
default_internal_group = {g}
default_login_user = {u}
mail_location = maildir:~/Maildir
first_valid_uid = 1
{oauth2_passdb}{master_passdb}passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service anvil {{
  chroot =
}}
service ipc {{
  chroot =
}}
service imap-login {{
  chroot =
{login_limits}  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox "Gesendete Elemente" {{
    special_use = \\Sent
  }}
}}
{extra}
"""

# What an admin sets for a thousand watched mailboxes (bench/mailboxes.py documents why).
MANY_LIMITS = """\
default_process_limit = 2000
default_client_limit = 8000
mail_max_userip_connections = 50
mailbox_idle_check_interval = 1 secs
verbose_proctitle = yes
service imap {
  process_limit = 5000
}
service auth {
  client_limit = 8000
}
"""
LOGIN_LIMITS = "  service_count = 0\n  process_min_avail = 2\n  client_limit = 2000\n"

# Dovecot 2.3.19's capabilities after login; a test removes some to play an older server.
CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
).split()


def available() -> bool:
    return os.path.exists(DOVECOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    host = "127.0.0.1"

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        without: tuple[str, ...] = (),
        extra: str = "",
        tls: tuple[bytes, bytes] | None = None,
        oauth2_url: str | None = None,
        master: tuple[str, str] | None = None,
        many: bool = False,
    ) -> None:
        """`tls`: (certificate chain, key) in PEM: IMAPS on `imaps_port` and STARTTLS on `port`.
        `oauth2_url`: XOAUTH2 and OAUTHBEARER, each token checked by Dovecot's oauth2 passdb with
        an RFC 7662 introspection request to this URL (POST token=…), whose JSON answer says
        `active` and names the user in `username`.
        `master`: (user, password) of a master user, who logs in to any user's mailbox as
        `user*master` (or SASL PLAIN with the user as authorization identity).
        `many`: limits for hundreds of users at once (MANY_LIMITS): one login process serving
        many clients, an IMAP process per connection up to 2,000, and IDLE noticing new mail
        within a second even when the kernel's inotify instances (128 per user) run out."""
        self.users = users or {"alice": "secret"}
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.port = free_port()
        self.imaps_port = free_port() if tls else 0
        self.proc: subprocess.Popen[bytes] | None = None
        as_root = os.geteuid() == 0
        pw = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.geteuid())
        self.uid, self.gid, self._user = pw.pw_uid, pw.pw_gid, pw.pw_name
        group = _group_name(self.gid)
        if without:
            caps = " ".join(c for c in CAPABILITIES if c not in without)
            extra = f"protocol imap {{\n  imap_capability = {caps}\n}}\n" + extra
        for sub in ("run", "state", "home"):
            (self.dir / sub).mkdir()
        (self.dir / "users").write_text(
            "".join(f"{u}:{{PLAIN}}{p}:{self.uid}:{self.gid}::{self.dir}/home/{u}\n" for u, p in self.users.items())
        )
        ssl = "ssl = no"
        if tls:
            (self.dir / "cert.pem").write_bytes(tls[0])
            (self.dir / "key.pem").write_bytes(tls[1])
            ssl = f"ssl = yes\nssl_cert = <{self.dir}/cert.pem\nssl_key = <{self.dir}/key.pem"
        mechanisms, oauth2_passdb = "", ""
        if oauth2_url:
            (self.dir / "oauth2.conf").write_text(
                f"introspection_mode = post\nintrospection_url = {oauth2_url}\nusername_attribute = username\n"
                "active_attribute = active\nactive_value = true\n"
            )
            mechanisms = " xoauth2 oauthbearer"
            oauth2_passdb = (
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {self.dir}/oauth2.conf\n}}\n"
            )
        master_passdb = ""
        if master:
            (self.dir / "masters").write_text(f"{master[0]}:{{PLAIN}}{master[1]}\n")
            master_passdb = (
                f"auth_master_user_separator = *\npassdb {{\n  driver = passwd-file\n  master = yes\n"
                f"  pass = yes\n  args = scheme=PLAIN {self.dir}/masters\n}}\n"
            )
        if many:
            extra = MANY_LIMITS + extra
        (self.dir / "dovecot.conf").write_text(
            CONF.format(
                d=self.dir,
                u=self._user,
                g=group,
                port=self.port,
                imaps_port=self.imaps_port,
                extra=extra,
                ssl=ssl,
                mechanisms=mechanisms,
                oauth2_passdb=oauth2_passdb,
                master_passdb=master_passdb,
                login_limits=LOGIN_LIMITS if many else "",
            )
        )
        for u in self.users:
            (self.dir / "home" / u / "Maildir").mkdir(parents=True)
        if as_root:
            for p in [self.dir, *self.dir.rglob("*")]:
                os.chown(p, self.uid, self.gid)
        self.start()

    # ---- process ------------------------------------------------------------------------

    def start(self) -> None:
        kw: dict[str, Any] = {}
        if os.geteuid() == 0:
            kw = {"user": self.uid, "group": self.gid, "extra_groups": []}
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.proc.stderr.read().decode()} {self.log()}")  # type: ignore[union-attr]
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.03)
        raise RuntimeError("dovecot did not answer: " + self.log())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill_sessions(self, user: str) -> int:
        """Kill -9 the IMAP processes serving `user` (their titles name the user with
        `verbose_proctitle`), as a crash of the server's side of those connections; how many."""
        assert self.proc is not None
        killed = 0
        for pid in _descendants(self.proc.pid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("dovecot/imap ") and f"[{user} " in title:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        return killed

    def log(self) -> str:
        try:
            return (self.dir / "dovecot.log").read_text()
        except OSError:
            return ""

    # ---- a person's mail client ---------------------------------------------------------

    @contextmanager
    def client(self, user: str = "alice") -> Iterator[Any]:
        from imapclient import IMAPClient

        c = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        c.login(user, self.users[user])
        try:
            yield c
        finally:
            with suppress(Exception):
                c.logout()

    def create(self, folder: str, user: str = "alice") -> None:
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)

    def delete(self, folder: str, user: str = "alice") -> None:
        with self.client(user) as c:
            c.delete_folder(folder)

    def recreate(self, folder: str, user: str = "alice", keep_flags: bool = True) -> tuple[int, int]:
        """Delete the folder and make it again with the same messages: a new UIDVALIDITY
        (`keep_flags=False`: the copies come back without their flags and keywords)."""
        with self.client(user) as c:
            old = c.select_folder(folder)[b"UIDVALIDITY"]
            msgs = c.fetch(c.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
            c.close_folder()
            c.delete_folder(folder)
            if not c.folder_exists(folder):  # a client with create_folders may have been quicker
                c.create_folder(folder)
            for _uid, d in sorted(msgs.items()):
                flags = [f for f in d[b"FLAGS"] if f != b"\\Recent"] if keep_flags else []
                c.append(folder, d[b"BODY[]"], flags=flags)
            new = c.select_folder(folder, readonly=True)[b"UIDVALIDITY"]
        return old, new

    def append(self, folder: str, raw: bytes, flags: tuple[str, ...] = (), user: str = "alice") -> int:
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            resp = c.append(folder, raw, flags=flags)
        return _copyuid(resp)

    def multiappend(self, folder: str, raws: list[bytes], user: str = "alice", chunk: int = 500) -> None:
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for i in range(0, len(raws), chunk):
                c.multiappend(folder, raws[i : i + chunk])

    def move(self, src: str, dst: str, message_id: str, user: str = "alice") -> None:
        """Drag a message from one folder to another, as a mail client does (MOVE)."""
        with self.client(user) as c:
            c.select_folder(src)
            uids = c.search(["HEADER", "Message-ID", message_id])
            assert uids, f"{message_id} not in {src}"
            c.move(uids, dst)

    def deliver(self, folder: str, raw: bytes, name: str, user: str = "alice") -> None:
        """Write a message into the Maildir directly, as the local delivery agent does
        (works while the server is stopped)."""
        base = self.dir / "home" / user / "Maildir" / ("." + folder.replace("/", "."))
        for sub in ("tmp", "new", "cur"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        tmp = base / "tmp" / name
        tmp.write_bytes(raw)
        if os.geteuid() == 0:
            for p in (base, base / "tmp", base / "new", base / "cur", tmp):
                os.chown(p, self.uid, self.gid)
        os.rename(tmp, base / "new" / name)

    def flags(self, folder: str, user: str = "alice") -> dict[str, set[str]]:
        """Message-ID → flags and keywords, as a mail client reads them (without setting \\Seen)."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            out: dict[str, set[str]] = {}
            data = c.fetch(c.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for d in data.values():
                header = d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[-1].strip()
                out[header] = {f.decode() for f in d[b"FLAGS"]}
            return out

    def count(self, folder: str, user: str = "alice") -> int:
        with self.client(user) as c:
            return int(c.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _copyuid(resp: bytes) -> int:
    # b'[APPENDUID 1700000000 7] Append completed.'
    try:
        return int(resp.split(b"]")[0].split()[-1])
    except (IndexError, ValueError):
        return 0


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
