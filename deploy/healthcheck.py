"""The image's HEALTHCHECK: GET /healthz of the status page, exit 0 when it answers "ok".

Only the standard library (the image has python and nothing like curl). The port is the one
of WEB_LISTEN, as in config.docker.yaml; a wildcard host is reached on the loopback."""

from __future__ import annotations

import os
import sys
import urllib.request


def url() -> str:
    host, _, port = os.environ.get("WEB_LISTEN", "0.0.0.0:8025").rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    try:
        with urllib.request.urlopen(url(), timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "5"))) as r:
            ok = r.status == 200 and r.read().strip() == b"ok"
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
