"""The rules in force, swapped between two messages when a valid edit arrives.

An invalid edit keeps the old rules running; its errors go to the log and to `status`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config.model import Config
from gateway.engine.loader import RuleSet, load_rules
from gateway.errors import RuleError

log = logging.getLogger("gateway.rules")


def rule_files(config: Config) -> list[Path]:
    """The files the config's rule globs name now (sorted by name, as they load)."""
    files: list[Path] = []
    for pattern in config.rules:
        p = config.resolve(pattern)
        matched = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
        files.extend(f for f in matched if f not in files)
    return sorted(files, key=lambda f: f.name)


def load_for(config: Config) -> RuleSet:
    folders = [f for s in config.sources for f in s.folders]
    return load_rules([str(config.resolve(p)) for p in config.rules], base_dir=config.base_dir, watched_folders=folders)


class RulesHolder:
    def __init__(self, config: Config, initial: RuleSet | None = None) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._current = initial if initial is not None else load_for(config)
        self.loaded_at = datetime.now(UTC)
        self.last_error: list[str] = []
        self.last_attempt: datetime | None = None

    @property
    def current(self) -> RuleSet:
        return self._current  # one attribute read: a message sees one rule set from start to end

    def reload(self) -> bool:
        """Validate the files as they are now; swap them in only when valid."""
        self.last_attempt = datetime.now(UTC)
        try:
            new = load_for(self.config)
        except RuleError as exc:
            self.last_error = list(exc.problems)
            for problem in exc.problems:
                log.error("rules not reloaded: %s", problem)
            return False
        with self._lock:
            changed = getattr(new, "fingerprint", None) != getattr(self._current, "fingerprint", object())
            self._current = new
            if changed:
                self.loaded_at = datetime.now(UTC)
        self.last_error = []
        if changed:
            log.info("rules reloaded: %d rules from %d files", len(new.rules), len(new.files))
        else:  # a SIGHUP (or a touch) must be seen to have been heard
            log.info("rules unchanged: %d rules from %d files still in force", len(new.rules), len(new.files))
        return True

    def status(self) -> dict[str, Any]:
        return {
            "files": [str(f) for f in self.current.files],
            "rules": [r.name for r in self.current.rules],
            "loaded_at": self.loaded_at.isoformat(),
            "errors": self.last_error,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
        }
