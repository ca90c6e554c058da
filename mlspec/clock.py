"""The one clock: every decision that depends on the current time reads it here.

`MLSPEC_NOW` (ISO 8601; a value without a zone is UTC) pins it for a whole process tree: `--now` on the CLI
sets it, the tests set it, and the pipeline steps that `mlspec run` starts inherit it. Decisions made with a
pinned clock (freshness, monitoring windows, trigger schedules, cooldowns) do not depend on the day or the
machine's time zone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

ENV_VAR = "MLSPEC_NOW"


class ClockError(ValueError):
    """MLSPEC_NOW (or --now) is not an ISO 8601 instant."""


def parse_instant(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text ('Z' and offsets accepted; no zone means UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ClockError(f"{text!r} is not an ISO 8601 instant (e.g. 2026-11-30T10:00:00Z)") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def now() -> datetime:
    """The current instant in UTC: MLSPEC_NOW when set, else the wall clock."""
    pinned = os.environ.get(ENV_VAR)
    if pinned:
        try:
            return parse_instant(pinned)
        except ClockError as exc:
            raise ClockError(f"{ENV_VAR}: {exc}") from None
    return datetime.now(UTC)


def pin(instant: str | datetime) -> str:
    """Pin the clock of this process and the processes it starts; returns the canonical value set."""
    value = instant if isinstance(instant, datetime) else parse_instant(instant)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    os.environ[ENV_VAR] = text
    return text
