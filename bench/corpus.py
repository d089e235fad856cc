"""A reproducible mail corpus for the pipeline benchmark, built with the stdlib `email` package.

`build(root, count, seed)` writes `count` messages (one of them a ~20 MB mail with a big
attachment, one a ~10 MB HTML-only mail) as Maildir files under `root/<folder>/new/`, and returns a manifest. The same
count and seed always give the same bytes.

Mix (roughly): plain text, multipart/alternative (text + HTML), mail with attachments (sizes
spread up to 2 MB, most of them small), RFC 2047 encoded display names and subjects, some raw
UTF-8 headers, a few automated mails (auto-replies, lists, bulk), some sent mail (From the
mailbox owner), and a sender distribution where a pool of people writes again and again
(known-sender paths) while a share of mail comes from people never seen before.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

FOLDERS = ["VLeads", "VContacts", "VAccounts", "CRM sync"]
FOLDER_WEIGHTS = [0.3, 0.25, 0.15, 0.3]
OWNER = "me@example.com"
BIG_SIZE = 20 * 1024 * 1024
HTML_SIZE = 10 * 1024 * 1024  # the HTML-only mail: a long report or a newsletter archive

FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Eva",
    "Felix",
    "Greta",
    "Hugo",
    "Ida",
    "Jonas",
    "Karl",
    "Lena",
    "Marta",
    "Nils",
    "Olga",
    "Paul",
    "Rosa",
    "Sven",
    "Tina",
    "Ulf",
    "Vera",
    "Wim",
    "Yusuf",
    "Zoe",
    "Jürgen",
    "Zoë",
    "Søren",
    "Łukasz",
    "Chloé",
    "Ångström",
    "Renée",
    "José",
    "Dvořák",
    "Ødegaard",
    "Мария",
    "Иван",
    "李",
    "王芳",
    "さくら",
    "محمد",
    "Γιώργος",
    "Ewa",
    "Björn",
]
LAST = [
    "Müller",
    "Schmidt",
    "Meyer",
    "Smith",
    "Jones",
    "Rossi",
    "García",
    "Nowak",
    "Kowalski",
    "Dubois",
    "Janssen",
    "Novák",
    "Öztürk",
    "Ångström",
    "Lefèvre",
    "Petrov",
    "Иванова",
    "Chen",
    "田中",
    "Papadopoulos",
    "Berg",
    "Lund",
    "Fischer",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
]
COMPANY_DOMAINS = [
    f"{w}.example"
    for w in (
        "acme",
        "globex",
        "initech",
        "umbrella",
        "hooli",
        "stark",
        "wayne",
        "wonka",
        "tyrell",
        "cyberdyne",
        "soylent",
        "oscorp",
        "vandelay",
        "gringotts",
        "monarch",
        "duff",
        "nakatomi",
        "virtucon",
        "massive",
        "aperture",
        "blackmesa",
        "contoso",
        "fabrikam",
        "northwind",
        "adventure",
        "litware",
        "proseware",
        "tailspin",
        "wingtip",
        "woodgrove",
        "müller-bau",
        "bäckerei-schmidt",
        "société-générale",
    )
]
FREEMAIL = ["gmail.com", "outlook.com", "gmx.de", "web.de", "yahoo.com", "hotmail.com"]
SUBJECTS = [
    "Angebot für {c}",
    "Re: Meeting next week",
    "Quote request",
    "Invoice 4711",
    "Rechnung {n}",
    "Ihre Anfrage vom {d}",
    "Follow-up: demo",
    "Fwd: Vertrag",
    "Déjà vu – nouvelle offre",
    "Предложение о сотрудничестве",
    "会議の件",
    "Price list 2026",
    "Question about order #{n}",
    "Grüße aus München",
    "Re: Re: Lieferung",
    "Termin bestätigt ✅",
    "Projekt Ü-{n}",
    "Support case {n}",
    "Welcome aboard",
    "Könnten Sie mir helfen?",
]
WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua über grüße straße café naïve façade smörgåsbord ½ € données приветствие "
    "договор 会議 資料 price quote offer delivery invoice contract meeting schedule"
).split()
ATTACH_TYPES = [
    ("application", "pdf", "pdf"),
    ("image", "png", "png"),
    ("image", "jpeg", "jpg"),
    ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("text", "csv", "csv"),
    ("application", "zip", "zip"),
]
ATTACH_NAMES = ["Angebot", "invoice", "Rechnung", "photo", "Präsentation", "contract", "Übersicht", "données", "scan", "報告書"]


@dataclass
class Entry:
    folder: str
    name: str
    size: int
    kind: str  # plain | alternative | attachments | big | big_html
    automated: str  # "" | auto_reply | list | bulk
    outbound: bool


class _People:
    """A pool of repeat correspondents (Zipf-like) and a supply of new ones."""

    def __init__(self, rng: random.Random, pool: int) -> None:
        self.rng = rng
        self.pool = [self._person(i) for i in range(pool)]
        self.weights = [1.0 / (i + 1) ** 0.9 for i in range(pool)]
        self.new_n = 0

    def _person(self, i: int) -> tuple[str, str]:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = rng.choice(FREEMAIL) if rng.random() < 0.3 else rng.choice(COMPANY_DOMAINS)
        local = f"{_ascii(first)}.{_ascii(last)}{i}".lower()
        return f"{first} {last}", f"{local}@{domain}"

    def pick(self) -> tuple[str, str]:
        if self.rng.random() < 0.2:  # a sender never seen before
            self.new_n += 1
            return self._person(100000 + self.new_n)
        return self.rng.choices(self.pool, self.weights)[0]


def _ascii(s: str) -> str:
    out = "".join(c for c in s.encode("ascii", "ignore").decode() if c.isalnum())
    return out or "x"


def _text(rng: random.Random, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(WORDS))
        if len(line) >= 12:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def _attachment_size(rng: random.Random) -> int:
    """Most attachments are small (1 to 50 KB), a tail reaches 2 MB."""
    r = rng.random()
    if r < 0.7:
        return rng.randint(1_000, 50_000)
    if r < 0.96:
        return rng.randint(60_000, 400_000)
    return rng.randint(400_000, 2 * 1024 * 1024)


def _payload(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _big_html(rng: random.Random, size: int) -> str:
    """An HTML-only mail of about `size` bytes: styled tables and paragraphs, as exported reports are."""
    head = "<html><head><title>Report</title><style>td{border:1px solid #ccc}</style></head><body>"
    chunks, n = [head], len(head)
    row = 0
    while n < size:
        row += 1
        cells = "".join(
            f'<td class="c{j}" style="padding:2px">{rng.choice(WORDS)} {rng.randint(1, 99999)}</td>' for j in range(6)
        )
        block = (
            f"<tr>{cells}</tr>"
            if row % 20
            else f"</table><p>Section {row // 20}: {' '.join(rng.choice(WORDS) for _ in range(40))} "
            f'<a href="https://example.org/r/{row}">more</a></p><table>'
        )
        chunks.append(block)
        n += len(block.encode())
    chunks.append("</table></body></html>")
    return "".join(chunks)


def make_message(rng: random.Random, people: _People, i: int, when: datetime, kind: str) -> tuple[bytes, Entry]:
    folder = rng.choices(FOLDERS, FOLDER_WEIGHTS)[0]
    outbound = folder == "CRM sync" and rng.random() < 0.35
    auto = ""
    r = rng.random()
    if not outbound and r < 0.06:
        auto = rng.choice(["auto_reply", "list", "bulk"])

    utf8_headers = rng.random() < 0.1  # raw UTF-8 headers (RFC 6532) instead of RFC 2047 words
    msg = EmailMessage(policy=policy.SMTPUTF8 if utf8_headers else policy.default)
    them = people.pick()

    def formataddr(person: tuple[str, str]) -> str:
        name, addr = person
        local, _, domain = addr.rpartition("@")
        if not utf8_headers:
            domain = domain.encode("idna").decode("ascii")
        return str(Address(display_name=name, addr_spec=f"{local}@{domain}"))

    if outbound:
        msg["From"] = formataddr(("Me Myself", OWNER))
        to = [them] + [people.pick() for _ in range(rng.choice([0, 0, 0, 1, 2]))]
        msg["To"] = ", ".join(formataddr(p) for p in to)
    else:
        msg["From"] = formataddr(them)
        msg["To"] = formataddr(("Me Myself", OWNER))
        if rng.random() < 0.2:
            msg["Cc"] = formataddr(people.pick())
    subject = rng.choice(SUBJECTS).format(c=them[0], n=rng.randint(1000, 99999), d=when.date().isoformat())
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<bench.{i}.{rng.getrandbits(48):012x}@{them[1].rpartition('@')[2].encode('idna').decode()}>"
    if rng.random() < 0.3:
        msg["In-Reply-To"] = f"<prev.{rng.getrandbits(40):010x}@example.com>"
        msg["References"] = msg["In-Reply-To"]
    if auto == "auto_reply":
        msg["Auto-Submitted"] = "auto-replied"
        msg.replace_header("Subject", "Automatic reply: " + subject)
    elif auto == "list":
        msg["List-Id"] = "<news.lists.example>"
        msg["List-Unsubscribe"] = "<mailto:leave@lists.example>"
    elif auto == "bulk":
        msg["Precedence"] = "bulk"
    msg["X-Mailer"] = rng.choice(["Microsoft Outlook 16.0", "Thunderbird 128", "Apple Mail (2.3774)", "Roundcube"])

    body = _text(rng, rng.randint(30, 600))
    if kind == "plain":
        msg.set_content(body)
    elif kind == "big_html":  # its own generator: the main one draws as for a plain mail
        msg.set_content(_big_html(random.Random(i), HTML_SIZE), subtype="html")
    else:
        msg.set_content(body)
        if kind in ("alternative", "attachments") and rng.random() < (1.0 if kind == "alternative" else 0.6):
            html = (
                "<html><head><title>t</title><style>p{color:red}</style></head><body>"
                + "".join(f"<p>{line}</p>" for line in body.splitlines())
                + '<p><a href="https://example.org/x">link</a></p></body></html>'
            )
            msg.add_alternative(html, subtype="html")
        if kind == "attachments":
            for _ in range(rng.choice([1, 1, 1, 2])):
                maintype, subtype, ext = rng.choice(ATTACH_TYPES)
                fname = f"{rng.choice(ATTACH_NAMES)}_{rng.randint(1, 999)}.{ext}"
                msg.add_attachment(_payload(rng, _attachment_size(rng)), maintype=maintype, subtype=subtype, filename=fname)
        elif kind == "big":
            msg.add_attachment(
                _payload(rng, BIG_SIZE * 3 // 4 - 200_000), maintype="application", subtype="zip", filename="Große Sicherung.zip"
            )
    raw = msg.as_bytes()
    name = f"{int(when.timestamp())}.M{i:06d}P1.bench"
    return raw, Entry(folder, name, len(raw), kind, auto, outbound)


def build(root: Path, count: int = 3000, seed: int = 20260101) -> dict:
    """Write the corpus under `root/<folder>/new/` and `root/manifest.json`; return the manifest."""
    rng = random.Random(seed)
    people = _People(rng, pool=max(20, count // 8))
    for f in FOLDERS:
        for sub in ("new", "cur", "tmp"):
            (root / f / sub).mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    big_at = rng.randrange(count)
    html_at = random.Random(seed + 1).randrange(count)  # its own generator: the other mails stay as they were
    entries: list[Entry] = []
    total = 0
    for i in range(count):
        when = start + timedelta(minutes=7 * i + rng.randint(0, 6))
        if i == big_at:
            kind = "big"
        else:
            r = rng.random()
            kind = "plain" if r < 0.45 else "alternative" if r < 0.75 else "attachments"
            if i == html_at:
                kind = "big_html"
        raw, entry = make_message(rng, people, i, when, kind)
        (root / entry.folder / "new" / entry.name).write_bytes(raw)
        entries.append(entry)
        total += len(raw)
    manifest = {
        "count": count,
        "seed": seed,
        "bytes": total,
        "new_senders": people.new_n,
        "pool": len(people.pool),
        "by_folder": {f: sum(1 for e in entries if e.folder == f) for f in FOLDERS},
        "by_kind": {
            k: sum(1 for e in entries if e.kind == k) for k in ("plain", "alternative", "attachments", "big", "big_html")
        },
        "automated": sum(1 for e in entries if e.automated),
        "outbound": sum(1 for e in entries if e.outbound),
        "largest": max(e.size for e in entries),
        "files": [asdict(e) for e in entries],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def files(root: Path) -> list[tuple[str, Path]]:
    """(folder, path) of every corpus message, in corpus order."""
    manifest = json.loads((root / "manifest.json").read_text())
    return [(e["folder"], root / e["folder"] / "new" / e["name"]) for e in manifest["files"]]


def byte_compile_gateway() -> None:
    """Byte-compile the gateway as an installed package is (pip compiles on install; an
    editable checkout run with PYTHONDONTWRITEBYTECODE=1 never is, and every process, each
    worker included, would compile its modules from source: ~0.15 s of CPU each)."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "gateway"), quiet=1)
