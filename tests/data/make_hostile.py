"""Writes the .eml fixtures of tests/data/ (run once; the outputs are committed).

    .venv/bin/python tests/data/make_hostile.py

The big hostile mails (hundreds of KB to 10 MB) are not committed: `big_hostile()` makes them
at test time, into a temporary folder.

Everything is deterministic, so running it again reproduces the same bytes. The files are
written as bytes on purpose: several contain raw 8-bit headers, invalid UTF-8 or CRLF.
"""

from __future__ import annotations

import base64
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTILE = HERE / "hostile"

# A PDF-looking binary with every byte value in it (so a lossy text decode would show).
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
NOTES = "Call back on Monday.\nPrices: 1.200 \u20ac net.\n".encode()
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data)  # 76-column lines


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


HEAD = b"""Return-Path: <ann@acme.example>
Received: from mail.acme.example (mail.acme.example [192.0.2.10])
\tby mx.example.com (Postfix) with ESMTPS id 4XyZ1;
\tTue, 18 Nov 2025 14:15:07 +0000 (UTC)
"""

PLAIN = (
    HEAD
    + b"""From: Ann Lee <ann@acme.example>
To: Bob Ray <bob@example.com>
Cc: "Lee, Carol" <carol@acme.example>, dave@example.com
Subject: Quote for 40 licences
Date: Tue, 18 Nov 2025 09:15:00 -0500
Message-ID: <plain-1@acme.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hi Bob,

as promised, the quote for 40 licences follows next week.

Ann
"""
)

ALTERNATIVE = (
    HEAD
    + b"""From: Ann Lee <ann@acme.example>
To: bob@example.com
Subject: Our new catalogue
Date: Wed, 19 Nov 2025 08:00:00 +0100
Message-ID: <alt-1@acme.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-b"

--alt-b
Content-Type: text/plain; charset=us-ascii

The catalogue is online.
--alt-b
Content-Type: multipart/related; boundary="rel-b"

--rel-b
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p>The <b>catalogue</b> is online.</p><img src=3D"cid:logo@acme.ex=
ample"></body></html>
--rel-b
Content-Type: image/png; name="logo.png"
Content-Transfer-Encoding: base64
Content-Disposition: inline; filename="logo.png"
Content-ID: <logo@acme.example>

"""
    + b64(PNG)
    + b"""--rel-b--
--alt-b--
"""
)

WITH_ATTACHMENTS = (
    HEAD
    + b"""From: Ann Lee <ann@acme.example>
To: Bob Ray <bob@example.com>
Subject: Quote and notes
Date: Thu, 20 Nov 2025 16:45:30 +0530
Message-ID: <att-1@acme.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix-b"

This is a multi-part message in MIME format.
--mix-b
Content-Type: text/plain; charset=utf-8

Please find the quote attached.
--mix-b
Content-Type: application/pdf; name="quote.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="quote.pdf"

"""
    + b64(PDF)
    + b"""--mix-b
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="notes.txt"

"""
    + b64(NOTES)
    + b"""--mix-b--
"""
)

NON_ASCII = (
    HEAD
    + """From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@xn--mller-kva.example>
To: Zoë Smith <zoe@example.com>, =?iso-8859-1?q?Fran=E7ois?= <francois@acme.example>
Subject: =?utf-8?b?QW5nZWJvdCBmw7xyIElocmUgQW5mcmFnZSDigJQgw5xiZXJzaWNodA==?=
Date: Fri, 21 Nov 2025 11:00:00 +0100
Message-ID: <nonascii-1@xn--mller-kva.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="na-b"

--na-b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus M=FCnchen
--na-b
Content-Type: application/pdf
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename*=utf-8''Angebot%20M%C3%BCller.pdf

""".encode()
    + b64(b"%PDF-1.4 angebot")
    + b"""--na-b
Content-Type: text/plain; name="=?utf-8?q?Pr=C3=A4sentation.txt?="
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="=?utf-8?q?Pr=C3=A4sentation.txt?="

"""
    + b64(b"slides")
    + b"""--na-b--
"""
)

NO_MESSAGE_ID = b"""From: Ann Lee <ann@acme.example>
To: bob@example.com
Subject: No id here
Date: Sat, 22 Nov 2025 10:00:00 +0000

A client that forgot the Message-ID.
"""

REPLY = b"""From: Bob Ray <bob@example.com>
To: Ann Lee <ann@acme.example>
Subject: RE: Quote for 40 licences
Date: Tue, 18 Nov 2025 17:02:11 +0000
Message-ID: <reply-1@example.com>
In-Reply-To: <plain-1@acme.example>
References: <older-0@acme.example>
 <plain-1@acme.example>
Thread-Topic: Quote for 40 licences
Thread-Index: AQHbWq0aXyZ1abcdEFGH
Content-Type: text/plain; charset=utf-8

Thanks Ann, looking forward to it.
"""

AUTO_REPLY = b"""Return-Path: <bob@example.com>
From: Bob Ray <bob@example.com>
To: Ann Lee <ann@acme.example>
Subject: Automatic reply: Quote for 40 licences
Date: Tue, 18 Nov 2025 14:16:00 +0000
Message-ID: <auto-1@example.com>
Auto-Submitted: auto-replied
X-Autoreply: yes
Content-Type: text/plain; charset=utf-8

I am out of the office until 1 December.
"""

BOUNCE = b"""Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: ann@acme.example
Subject: Undelivered Mail Returned to Sender
Date: Tue, 18 Nov 2025 14:20:00 +0000
Message-ID: <bounce-1@mx.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn-b"

--dsn-b
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.
--dsn-b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; nobody@example.com
Action: failed
Status: 5.1.1
--dsn-b
Content-Type: message/rfc822

From: Ann Lee <ann@acme.example>
To: nobody@example.com
Subject: Quote for 40 licences
Message-ID: <lost-1@acme.example>

This text belongs to the returned message, not to the bounce.
--dsn-b--
"""

NEWSLETTER = b"""From: Acme News <news@acme.example>
To: bob@example.com
Subject: Acme monthly
Date: Mon, 01 Dec 2025 06:00:00 +0000
Message-ID: <news-2025-12@lists.acme.example>
List-Id: Acme News <news.acme.example>
List-Unsubscribe: <mailto:unsubscribe@acme.example>, <https://acme.example/unsub?u=42>
Precedence: bulk
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><title>Acme monthly</title><style>p {color: red}</style></head>
<body><h1>Acme&nbsp;monthly</h1><p>New products &amp; prices.</p><p>See you.</p></body></html>
"""

FORWARDED = (
    HEAD
    + b"""From: Ann Lee <ann@acme.example>
To: bob@example.com
Subject: Fwd: the original
Date: Mon, 24 Nov 2025 12:00:00 +0000
Message-ID: <fwd-1@acme.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-b"

--fwd-b
Content-Type: text/plain

See the mail below.
--fwd-b
Content-Type: message/rfc822

From: Carol Lee <carol@acme.example>
To: ann@acme.example
Subject: The original
Message-ID: <orig-1@acme.example>

Original body.
--fwd-b--
"""
)

# ---- hostile

H = b"""From: Ann Lee <ann@acme.example>
To: bob@example.com
Date: Tue, 25 Nov 2025 10:00:00 +0000
MIME-Version: 1.0
"""

BROKEN_MIME = (
    H
    + b"""Subject: truncated multipart
Message-ID: <broken-1@acme.example>
Content-Type: multipart/mixed; boundary="cut-b"

--cut-b
Content-Type: text/plain

The attachment below was cut off in transit.
--cut-b
Content-Type: application/pdf; name="cut.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="cut.pdf"

JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PC9UeXBlL0NhdGFsb2cvUGFnZXMgMiAwIFI+Pgpl
bmRvYmoKMiAwIG9iago8PC9UeXBlL1BhZ2VzL0tp"""
)

MISSING_BOUNDARY = (
    H
    + b"""Subject: multipart without boundary
Message-ID: <noboundary-1@acme.example>
Content-Type: multipart/mixed

--lost
Content-Type: text/plain

Text that the parser cannot split off.
--lost--
"""
)

NO_START_BOUNDARY = (
    H
    + b"""Subject: boundary never used
Message-ID: <nostart-1@acme.example>
Content-Type: multipart/alternative; boundary="never"

Plain text where the parts should have been.
"""
)

BAD_CHARSET = (
    H
    + b"""From: =?x-no-such?q?Ann_Lee?= <ann@acme.example>
Subject: =?x-no-such-charset?q?caf=E9?= bad charset
Message-ID: <badcharset-1@acme.example>
Content-Type: multipart/mixed; boundary="bc"

--bc
Content-Type: text/plain; charset="x-no-such-charset"
Content-Transfer-Encoding: 8bit

Caf\xe9 cr\xe8me \xff\xfe invalid bytes, and valid: \xe2\x82\xac
--bc
Content-Type: text/plain; charset="undefined"; name="data.txt"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.txt"

"""
    + b64(b"caf\xe9 \xff")
    + b"""--bc--
"""
)

NO_HEADERS = b"""Hello, this file has no header block at all.
Just text from someone who saved a body as .eml.
"""

NESTED_5 = (
    H
    + b"""Subject: five levels deep
Message-ID: <nested5-1@acme.example>
Content-Type: multipart/mixed; boundary="n1"

--n1
Content-Type: multipart/mixed; boundary="n2"

--n2
Content-Type: multipart/alternative; boundary="n3"

--n3
Content-Type: multipart/related; boundary="n4"

--n4
Content-Type: multipart/mixed; boundary="n5"

--n5
Content-Type: text/plain

Deepest text.
--n5
Content-Type: text/csv; name="deep.csv"
Content-Disposition: attachment; filename="deep.csv"

a,b
1,2
--n5--
--n4--
--n3--
--n2--
--n1--
"""
)

HTML_SCRIPT = (
    H
    + b"""Subject: html with script
Message-ID: <script-1@acme.example>
Content-Type: text/html; charset=utf-8

<html><head><script>alert('head')</script></head>
<body onload="steal()"><p onclick="evil()">Hello <a href="javascript:alert(1)">click</a></p>
<script type="text/javascript">document.location='https://evil.example/'</script>
<iframe src="https://evil.example/frame"></iframe><img src="x" onerror="boom()">Bye</body></html>
"""
)

RFC822_BASE64 = (
    H
    + b"""Subject: attached mail in base64
Message-ID: <eml64-1@acme.example>
Content-Type: multipart/mixed; boundary="e64"

--e64
Content-Type: text/plain

Forwarded as base64, which RFC 2046 forbids for message/rfc822.
--e64
Content-Type: message/rfc822
Content-Transfer-Encoding: base64
Content-Disposition: attachment

"""
    + b64(b"From: carol@acme.example\r\nSubject: inner\r\n\r\ninner body\r\n")
    + b"""--e64--
"""
)

BAD_BASE64 = (
    H
    + b"""Subject: corrupt base64
Message-ID: <bad64-1@acme.example>
Content-Type: multipart/mixed; boundary="bb"

--bb
Content-Type: text/plain

See attachment.
--bb
Content-Type: application/octet-stream; name="blob.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="blob.bin"

aGVsbG8g!!!d29y*bGQ
--bb--
"""
)

BINARY_GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))

BAD_DATE = b"""From: Ann Lee <ann@acme.example>
To: bob@example.com
Subject: date nobody can read
Date: sometime next week
Message-ID: <baddate-1@acme.example>
Received: from relay.example.com by mx.example.com; Wed, 26 Nov 2025 08:30:00 -0800
Received: from client by relay.example.com; Wed, 26 Nov 2025 16:29:00 +0000

Body.
"""

# mail-parser 4.8.0 raises AttributeError here: a nested multipart cut before its first
# boundary gives StartBoundaryNotFoundDefect, and the epilogue recovery then calls
# find_between(None, ...) on the missing epilogue.
TRUNCATED_NESTED = (
    H
    + b"""Subject: cut inside a nested multipart
Message-ID: <cutnested-1@acme.example>
Content-Type: multipart/mixed; boundary="t1"

--t1
Content-Type: text/plain

Outer text survives.
--t1
Content-Type: multipart/related; boundary="t2"

--t"""
)

# mail-parser 4.8.0 raises ValueError ("embedded null character") decoding a body whose
# charset parameter holds a NUL, and email.errors.CharsetError for an 8-bit charset name.
NUL_CHARSET = (
    H
    + b"""Subject: NUL in a charset name
Message-ID: <nulcharset-1@acme.example>
Content-Type: text/plain; charset="utf\x00-8"
Content-Transfer-Encoding: base64

"""
    + b64("Gr\u00fc\u00dfe".encode())
    + b""
)

EIGHTBIT_CHARSET = (
    H
    + b"""Subject: 8-bit charset name
Message-ID: <8bitcharset-1@acme.example>
Content-Type: multipart/mixed; boundary="e8"

--e8
Content-Type: text/plain

Outer text.
--e8
Content-Type: multipart/mixed; boundary="e9"
Content-Disposition: attachment; filename="bundle"

--e9
Content-Type: text/plain; charset="x-\x80bogus"
Content-Transfer-Encoding: 8bit

caf\xe9
--e9--
--e8--
"""
)


# Encoded words that decode to CR/LF: a CRM that builds mail from the subject, a name or a file
# name must not be handed a header line ("Bcc: victim").
CRLF_HEADERS = (
    b"""From: =?utf-8?q?Eve=0D=0ABcc:_victim@evil.example?= <eve@evil.example>
To: bob@example.com
Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?=
Date: Tue, 25 Nov 2025 10:00:00 +0000
Message-ID: <crlf-1@evil.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="cr"

--cr
Content-Type: text/plain

Header injection attempt.
--cr
Content-Type: application/pdf
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="=?utf-8?q?invoice=0D=0ABcc:_x.pdf?="

"""
    + b64(b"%PDF-1.4 crlf")
    + b"""--cr--
"""
)

# File names that are no names: "..", ".", a path, 300 bytes of UTF-8 (RFC 2231), a tab.
UNSAFE_FILENAMES = (
    H
    + b"""Subject: unsafe attachment names
Message-ID: <names-1@acme.example>
Content-Type: multipart/mixed; boundary="un"

--un
Content-Type: text/plain

Four attachments.
--un
Content-Type: application/octet-stream
Content-Disposition: attachment; filename=".."

dotdot
--un
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="."

dot
--un
Content-Type: application/pdf
Content-Disposition: attachment; filename="..\\..\\windows\\evil.pdf"

path
--un
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''"""
    + b"%C3%A4" * 150
    + b""".pdf

long
--un
Content-Type: text/plain; name="=?utf-8?q?tab=09name.txt?="
Content-Disposition: attachment

tab
--un--
"""
)

# One NUL byte in the first header name: still a mail, not "a stray binary file".
NUL_HEADER_NAME = b"""Fr\x00om: Ann Lee <ann@acme.example>
To: bob@example.com
Subject: NUL in a header name
Date: Tue, 25 Nov 2025 10:00:00 +0000
Message-ID: <nulname-1@acme.example>
Content-Type: text/plain

The first header name has a NUL byte in it.
"""

# Small versions of the HTML that html.parser needed minutes for (big ones: big_hostile()).
QUADRATIC_HTML_SMALL = (
    H
    + b"""Subject: html parser bait
Message-ID: <qhtml-small@acme.example>
Content-Type: text/html; charset=utf-8

<p>Visible start.</p>"""
    + b"<a b=" * 2000
    + b"</" * 2000
    + b"<?" * 2000
    + b"\n"
)


def _html_mail(subject: str, mid: str, html: bytes) -> bytes:
    return (
        H
        + b"Subject: "
        + subject.encode()
        + b"\nMessage-ID: <"
        + mid.encode()
        + b">\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + html
    )


def _report_html(size: int) -> bytes:
    """An HTML-only report of about `size` bytes: tables of short cells, as exports are."""
    rows, n, i = [b"<html><head><style>td{padding:1px}</style></head><body><p>Report start.</p><table>"], 0, 0
    while n < size:
        i += 1
        row = b"<tr>" + b"".join(b'<td class="c">cell %d-%d</td>' % (i, j) for j in range(8)) + b"</tr>"
        rows.append(row)
        n += len(row)
    rows.append(b"</table><p>Report end.</p></body></html>")
    return b"".join(rows)


def big_hostile() -> dict[str, bytes]:
    """The big hostile mails, made at test time (name -> bytes). html.parser needed 14 s of CPU
    for 40 KB of '<a b=' and more than 300 s for 200 KB; '</' and '<?' were quadratic too."""
    blanks = (
        b"From: ann@acme.example\nSubject: blanks\nMessage-ID: <blanks-1@acme.example>\nX-Pad: x"
        + b" " * 200_000
        + b"y\n\nA header with a long run of blanks.\n"
    )
    return {
        "quadratic-html-attr.eml": _html_mail("a b=", "qhtml-attr@acme.example", b"<p>Start.</p>" + b"<a b=" * 60_000),
        "quadratic-html-close.eml": _html_mail("close", "qhtml-close@acme.example", b"<p>Start.</p>" + b"</" * 400_000),
        "quadratic-html-pi.eml": _html_mail("pi", "qhtml-pi@acme.example", b"<p>Start.</p>" + b"<?" * 400_000),
        "ampersand-html.eml": _html_mail("amp", "amp-1@acme.example", b"<p>" + b"a&b " * 250_000 + b"</p>"),
        "deep-html.eml": _html_mail("deep", "deep-1@acme.example", b"<div>" * 100_000 + b"deep text"),
        "html-10mb.eml": _html_mail("10 MB report", "html10@acme.example", _report_html(10 * 1024 * 1024)),
        "blank-run-header.eml": blanks,
    }


FIXTURES = {
    HERE / "plain.eml": PLAIN,
    HERE / "alternative.eml": ALTERNATIVE,
    HERE / "with-attachments.eml": WITH_ATTACHMENTS,
    HERE / "non-ascii-headers.eml": NON_ASCII,
    HERE / "no-message-id.eml": NO_MESSAGE_ID,
    HERE / "reply.eml": REPLY,
    HERE / "auto-reply.eml": AUTO_REPLY,
    HERE / "bounce-dsn.eml": BOUNCE,
    HERE / "newsletter.eml": NEWSLETTER,
    HERE / "forwarded.eml": FORWARDED,
    HOSTILE / "broken-mime.eml": BROKEN_MIME,
    HOSTILE / "missing-boundary.eml": MISSING_BOUNDARY,
    HOSTILE / "no-start-boundary.eml": NO_START_BOUNDARY,
    HOSTILE / "bad-charset.eml": BAD_CHARSET,
    HOSTILE / "no-headers.eml": NO_HEADERS,
    HOSTILE / "empty.eml": b"",
    HOSTILE / "nested-5.eml": NESTED_5,
    HOSTILE / "html-script.eml": HTML_SCRIPT,
    HOSTILE / "rfc822-base64.eml": RFC822_BASE64,
    HOSTILE / "bad-base64.eml": BAD_BASE64,
    HOSTILE / "binary-garbage.eml": BINARY_GARBAGE,
    HOSTILE / "bad-date.eml": BAD_DATE,
    HOSTILE / "truncated-nested.eml": TRUNCATED_NESTED,
    HOSTILE / "nul-charset.eml": NUL_CHARSET,
    HOSTILE / "8bit-charset-name.eml": EIGHTBIT_CHARSET,
    HOSTILE / "crlf-headers.eml": CRLF_HEADERS,
    HOSTILE / "unsafe-filenames.eml": UNSAFE_FILENAMES,
    HOSTILE / "nul-header-name.eml": NUL_HEADER_NAME,
    HOSTILE / "quadratic-html-small.eml": QUADRATIC_HTML_SMALL,
}

if __name__ == "__main__":
    for path, data in FIXTURES.items():
        write(path, data)
        print(f"{path.relative_to(HERE)}: {len(data)} bytes")
