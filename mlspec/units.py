"""Durations, Kubernetes quantities and target-legal names."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)$")
_DURATION_SECONDS: dict[str, Decimal | int] = {
    "ms": Decimal("0.001"),
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}

# https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
_QUANTITY = re.compile(
    r"^([+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Decimal | int] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def duration_seconds(text: str) -> int:
    """'10m' -> 600. Sub-second values round up to 1 s."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 10m")
    seconds = Decimal(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    return max(int(seconds.to_integral_value(rounding="ROUND_CEILING")), 0 if seconds == 0 else 1)


def is_quantity(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value >= 0
    return isinstance(value, str) and bool(_QUANTITY.fullmatch(value))


def quantity(value: str | int | float | None) -> str | None:
    """Normalize a quantity to Kubernetes' canonical text (2 -> '2', 0.5 -> '500m', '16Gi' -> '16Gi')."""
    if value is None:
        return None
    if isinstance(value, bool) or not is_quantity(value):
        raise ValueError(f"invalid Kubernetes quantity {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        milli = Decimal(str(value)) * 1000
        if milli == milli.to_integral_value():
            return f"{int(milli)}m"
        return str(value)
    return value


def quantity_value(value: str | int | float) -> Decimal:
    """The numeric value of a quantity (cores or bytes)."""
    text = quantity(value)
    assert text is not None
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ValueError(f"invalid Kubernetes quantity {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    try:
        if suffix in _BINARY:
            return number * _BINARY[suffix]
        if suffix in _DECIMAL:
            return number * Decimal(_DECIMAL[suffix])
        return number * (Decimal(10) ** int(suffix[1:]))
    except InvalidOperation as exc:
        raise ValueError(f"invalid Kubernetes quantity {value!r}") from exc


def dns_label(name: str, max_length: int = 63) -> str:
    """A DNS-1123 label: lowercase alphanumerics and '-', starting with a letter."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)
    if not label or not label[0].isalpha():
        label = f"x-{label}".rstrip("-")
    return label[:max_length].rstrip("-")


def identifier(name: str) -> str:
    """A Python identifier / Airflow task id / Terraform name."""
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower()
    if not ident or ident[0].isdigit():
        ident = f"x_{ident}"
    return ident
