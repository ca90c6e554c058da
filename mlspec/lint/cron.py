"""A strict five-field cron validator (the dialect Airflow, Kubeflow and Kubernetes CronJobs share)."""

from __future__ import annotations

import re

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ATOM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def cron_error(expr: str) -> str | None:
    """None when expr is valid, else what is wrong with it."""
    text = expr.strip().lower()
    if text in _MACROS:
        return None
    parts = text.split()
    if len(parts) != 5:
        return f"expected 5 fields, found {len(parts)}"
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            match = _ATOM.fullmatch(item)
            if not match:
                return f"{name} field {item!r} is malformed"
            base, step = match.group(1), match.group(2)
            if step is not None and int(step) == 0:
                return f"{name} step must be positive"
            if base == "*":
                continue
            bounds = base.split("-")
            values = []
            for b in bounds:
                value = names.get(b) if not b.isdigit() else int(b)
                if value is None:
                    return f"{name} value {b!r} is not a number"
                if not low <= value <= high:
                    return f"{name} value {value} is outside {low}-{high}"
                values.append(value)
            if len(values) == 2 and values[0] > values[1]:
                return f"{name} range {base} is reversed"
    return None
