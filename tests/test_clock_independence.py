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


def _verdicts(tmp_path: Path, name: str, marker: str, instant: datetime | None, tz: str) -> dict[str, str]:
    """{test id: outcome} of the tests selected by `marker`, run with the wall clock at `instant`."""
    report = tmp_path / f"{name}.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *CLOCK_TESTS,
        "-m",
        marker,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit2",
    ]
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    if instant is not None:
        faketime = shutil.which("faketime")
        assert faketime, "faketime is not installed (scripts/setup.sh installs it from Debian's packages)"
        offset = int(instant.timestamp() - time.time())
        cmd = [faketime, "-f", f"{offset:+d}s", *cmd]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[test_id] = (
            "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
        )
    assert outcomes, proc.stdout[-3000:]
    return outcomes


def _assert_same(reference: dict[str, str], got: dict[str, str], name: str) -> None:
    assert set(reference.values()) == {"passed"}, reference
    differing = {
        t: (reference.get(t), got.get(t)) for t in set(reference) | set(got) if reference.get(t) != got.get(t)
    }
    assert not differing, f"verdicts at {name} differ from the pinned run: {differing}"


def test_fast_clock_tests_agree_at_awkward_instants(tmp_path: Path) -> None:
    marker = "clock and not slow"
    reference = _verdicts(tmp_path, "real-clock", marker, None, "UTC")
    for name, (instant, tz) in INSTANTS.items():
        _assert_same(reference, _verdicts(tmp_path, name, marker, instant, tz), name)


def test_slow_clock_tests_pass_on_a_monday(tmp_path: Path) -> None:
    """The end-to-end local-sink retraining (the fast clock tests ran at every instant above)."""
    instant, tz = INSTANTS["monday-1000-utc"]
    monday = _verdicts(tmp_path, "monday-1000-utc", "clock and slow", instant, tz)
    assert any("local_sink" in test_id for test_id in monday)
    assert set(monday.values()) == {"passed"}, monday
