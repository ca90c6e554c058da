"""The clock-dependent tests give the same verdicts whatever the machine's clock and time zone say.

Each test marked `clock` pins mlspec's clock (MLSPEC_NOW, see the root conftest). Here the whole set runs
again in a child pytest whose wall clock libfaketime moves to awkward instants: a Monday inside the
'0 3 * * 1' retraining tick, a leap day, New Year's Eve one minute before midnight, and daylight-saving
changes in zones that are not UTC. A verdict that differs from the pinned run's means some decision reads the
wall clock instead of mlspec.clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]

# name: (the wall-clock instant in UTC, the machine's time zone)
INSTANTS = {
    "monday-0330-utc": (datetime(2026, 11, 30, 3, 30, tzinfo=UTC), "UTC"),
    "leap-day": (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "UTC"),
    "new-years-eve-2359-utc": (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "UTC"),
    # 02:30 local happens twice in Berlin that night; this is the second time (CET)
    "dst-ends-berlin": (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Europe/Berlin"),
    # 03:30 local, just after New York skipped from 02:00 to 03:00
    "dst-starts-new-york": (datetime(2027, 3, 14, 7, 30, tzinfo=UTC), "America/New_York"),
    # the proof: a Monday and a Tuesday at 10:00 UTC
    "monday-1000-utc": (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), "UTC"),
    "tuesday-1000-utc": (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), "UTC"),
}
CLOCK_TESTS = ["tests"]
CLOCK_CHILD = "MLSPEC_CLOCK_CHILD"  # the root conftest runs `monday` tests only in such a child


def _start(
    tmp_path: Path, name: str, marker: str, instant: datetime, tz: str
) -> tuple[subprocess.Popen, Path]:
    """A child pytest running the tests selected by `marker` with the wall clock at `instant`."""
    report = tmp_path / f"{name}.xml"
    faketime = shutil.which("faketime")
    assert faketime, "faketime is not installed (scripts/setup.sh installs it from Debian's packages)"
    offset = int(instant.timestamp() - time.time())
    cmd = [
        faketime,
        "-f",
        f"{offset:+d}s",
        sys.executable,
        "-m",
        "pytest",
        *CLOCK_TESTS,
        "-m",
        marker,
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit2",
    ]
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT), CLOCK_CHILD: "1"}
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), report


def _outcomes(proc: subprocess.Popen, report: Path) -> dict[str, str]:
    """{test id: outcome} once the child has finished."""
    proc.wait(timeout=900)
    log = report.with_suffix(".log").read_text()[-3000:]
    assert report.exists(), log
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[test_id] = (
            "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
        )
    assert outcomes, log
    return outcomes


def test_fast_clock_tests_agree_at_awkward_instants(tmp_path: Path) -> None:
    """Every fast clock test passes at every instant; two instants run at a time (two cores)."""
    marker = "clock and not slow"
    verdicts: dict[str, dict[str, str]] = {}
    names = list(INSTANTS)
    for pair in (names[i : i + 2] for i in range(0, len(names), 2)):
        running = {name: _start(tmp_path, name, marker, *INSTANTS[name]) for name in pair}
        verdicts.update({name: _outcomes(*child) for name, child in running.items()})
    tests = {t for outcomes in verdicts.values() for t in outcomes}
    assert any("test_triggers_decide" in t for t in tests), tests
    failing = {name: {t: v for t, v in o.items() if v != "passed"} for name, o in verdicts.items()}
    assert not any(failing.values()), f"verdicts that depend on the wall clock: {failing}"
    missing = {name: tests - set(o) for name, o in verdicts.items() if set(o) != tests}
    assert not missing, f"instants that ran fewer tests: {missing}"


def test_slow_clock_tests_pass_on_a_monday(tmp_path: Path) -> None:
    """The end-to-end local-sink retraining, which failed every Monday, runs here, and only here (the root
    conftest leaves `monday` tests to this one), with the wall clock at Monday 10:00 UTC."""
    instant, tz = INSTANTS["monday-1000-utc"]
    monday = _outcomes(*_start(tmp_path, "monday-1000-utc", "clock and slow", instant, tz))
    assert any("local_sink" in test_id for test_id in monday), monday
    assert set(monday.values()) == {"passed"}, monday
