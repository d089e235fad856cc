"""`check` over hostile config and rule files (tests/data/hostile_config): every one answers
exit 1 with the problem at FILE:LINE:COL, never a traceback, within 5 CPU seconds and 200 MB;
and `run` refuses the configs `check` refuses, the same way.

CPU time is capped with RLIMIT_CPU (robust on a busy machine, unlike wall time); peak memory
is the child's own ru_maxrss from wait4. A wall-clock timeout is only a safety net against a
hang (a FIFO must not block): it is generous and its expiry fails the test by itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.data.hostile_config.generate import NAMES, Case, generate

CPU_SECONDS = 5
MAX_RSS_MB = 200
WALL_SAFETY_NET = 60.0
POSITIONED = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$", re.M)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str
    stdout: str
    cpu_seconds: float
    max_rss_mb: float
    hung: bool


# The CLI is started by a small launcher, not forked from pytest: Linux keeps a process's peak
# RSS across exec, so a child forked from a pytest grown past 200 MB would be charged for it.
# The launcher forks the CLI from its own few MB, caps its CPU, and reports its wait4 figures.
_LAUNCHER = """
import json, os, resource, sys
cpu, report, *cmd = sys.argv[1:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 1))
    os.execv(sys.executable, [sys.executable, *cmd])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss}, f)
"""


def run_bounded(args: list[str], cwd: Path) -> Outcome:
    """Run the CLI under the CPU cap; measure this child alone (wait4), kill it if it hangs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(CPU_SECONDS), str(report), "-m", "gateway", *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the launcher and the CLI: one group to kill if they hang
        )
        hung = threading.Event()

        def kill() -> None:
            hung.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(WALL_SAFETY_NET, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        usage = json.loads(report.read_text()) if report.exists() else {"code": proc.returncode, "cpu": 0.0, "rss_kb": 0}
        out.seek(0)
        err.seek(0)
        return Outcome(
            int(usage["code"]),
            err.read().decode("utf-8", "replace"),
            out.read().decode("utf-8", "replace"),
            float(usage["cpu"]),
            int(usage["rss_kb"]) / 1024,
            hung.is_set(),
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return {c.name: c for c in generate(tmp_path_factory.mktemp("hostile_config"))}


@pytest.mark.parametrize("name", NAMES)
def test_check_answers_every_hostile_file_with_a_position_within_bounds(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    got = run_bounded(["check", "-c", str(case.config)], cwd=case.config.parent)
    assert not got.hung, f"check did not return within {WALL_SAFETY_NET}s"
    assert got.returncode != -signal.SIGXCPU, f"check used more than {CPU_SECONDS} CPU seconds"
    assert "Traceback" not in got.stderr + got.stdout, got.stderr
    assert got.returncode == 1, got.stderr
    problems = [m for m in POSITIONED.finditer(got.stderr) if case.expect in m.group("message")]
    assert problems, f"no FILE:LINE:COL line saying {case.expect!r} in:\n{got.stderr}"
    if case.line is not None:
        assert int(problems[0].group("line")) == case.line, got.stderr
    assert got.max_rss_mb < MAX_RSS_MB, f"peak RSS {got.max_rss_mb:.0f} MB"
    assert got.cpu_seconds < CPU_SECONDS


# What `check` refuses, `run` refuses too, before starting anything: exit 1, the same line.
RUN_REFUSES = (
    "ledger_mysql",
    "crm_unknown_backend",
    "smtp_port_too_big",
    "duplicate_top_key",
    "folder_dotdot",
    "rule_move_traversal",
    "secret_fifo",
    "config_recursive_alias",
    "huge_glob",
)


@pytest.mark.parametrize("name", RUN_REFUSES)
def test_run_refuses_what_check_refuses_with_the_same_message(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    checked = run_bounded(["check", "-c", str(case.config)], cwd=case.config.parent)
    ran = run_bounded(["run", "--once", "-c", str(case.config)], cwd=case.config.parent)
    assert not ran.hung and "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 1, ran.stderr
    line = next(m.group(0) for m in POSITIONED.finditer(checked.stderr) if case.expect in m.group("message"))
    assert line in ran.stderr
    if not name.startswith("rule_"):  # a config problem is refused before anything is opened
        assert not (case.config.parent / "var" / "gateway.db").exists()
