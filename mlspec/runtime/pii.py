"""PII detection in feature columns: emails, phone numbers, card numbers (Luhn), US SSNs, IPv4/IPv6 addresses.

Vectorized pandas string regexes on a deterministic sample; card numbers are confirmed with a vectorized Luhn
check and SSNs by their area/group/serial rules. The patterns avoid look-arounds so they run on both Python's
re and pyarrow's RE2 (the default string dtype in pandas 3).

String columns fail on any match. Numeric columns are checked for card numbers only (a phone number or SSN
stored as a bare integer is indistinguishable from a count or a timestamp): integer values of 13-19 digits,
flagged when most of them pass Luhn (random numbers pass one time in ten).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE = (
    r"(?:\+[1-9]\d{0,2}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}\b)"  # international, E.164-like
    r"|(?:\(?\b[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]\d{4}\b)"  # North American: (555) 123-4567, 555-123-4567
)
CARD = r"\b([1-9](?:[ -]?\d){12,18})\b"
SSN = r"\b(\d{3})-(\d{2})-(\d{4})\b"
IPV4 = r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b"
IPV6 = (
    r"(?:\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b)"  # full form
    r"|(?:\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?)"  # a::b compressed
    r"|(?:::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}\b)"  # ::1
)
KINDS = ("email", "phone", "card_number", "ssn", "ipv4", "ipv6")


def luhn_valid(digits: pd.Series) -> np.ndarray:
    """Vectorized Luhn check of strings of 1-19 digits."""
    if digits.empty:
        return np.zeros(0, dtype=bool)
    width = 19
    padded = digits.astype(str).str.zfill(width)
    arr = np.frombuffer("".join(padded.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, width) - 48
    arr = arr.astype(np.int64)
    # from the right: the check digit is not doubled, every second digit before it is
    double = (np.arange(width)[::-1] % 2) == 1
    doubled = arr[:, double] * 2
    arr[:, double] = np.where(doubled > 9, doubled - 9, doubled)
    return arr.sum(axis=1) % 10 == 0


def _card_hits(text: pd.Series) -> int:
    found = text.str.extract(CARD, expand=False).dropna()
    if found.empty:
        return 0
    digits = found.str.replace(r"[ -]", "", regex=True)
    return int(luhn_valid(digits).sum())


def _ssn_hits(text: pd.Series) -> int:
    parts = text.str.extract(SSN).dropna()
    if parts.empty:
        return 0
    area, group, serial = (parts[i].astype(int) for i in (0, 1, 2))
    valid = (area > 0) & (area != 666) & (area < 900) & (group > 0) & (serial > 0)
    return int(valid.sum())


def scan_text(text: pd.Series) -> dict[str, int]:
    """Matches per PII kind in a Series of strings (nulls dropped by the caller)."""
    return {
        "email": int(text.str.contains(EMAIL, regex=True).sum()),
        "phone": int(text.str.contains(PHONE, regex=True).sum()),
        "card_number": _card_hits(text),
        "ssn": _ssn_hits(text),
        "ipv4": int(text.str.contains(IPV4, regex=True).sum()),
        "ipv6": int(text.str.contains(IPV6, regex=True).sum()),
    }


def scan_numeric(values: pd.Series) -> dict[str, int]:
    """Card numbers stored as integers: flagged when most 13-19 digit values pass Luhn."""
    x = pd.to_numeric(values, errors="coerce").dropna()
    x = x[(x == np.floor(x)) & (x.abs() >= 1e12) & (x.abs() < 1e19)]
    if x.empty:
        return {}
    digits = pd.Series(np.abs(x.to_numpy()).astype(np.uint64).astype(str))
    hits = int(luhn_valid(digits).sum())
    return {"card_number": hits} if hits > 0.5 * len(digits) else {}


def scan_frame(
    df: pd.DataFrame, columns: list[str], sample_rows: int = 10_000, seed: int = 0
) -> dict[str, dict[str, int]]:
    """{column: {kind: matching sampled values}} for columns with any PII found."""
    sample = df if len(df) <= sample_rows else df.sample(n=sample_rows, random_state=seed)
    found: dict[str, dict[str, int]] = {}
    for name in columns:
        col = sample[name].dropna()
        if col.empty:
            continue
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            hits = scan_numeric(col)
        else:
            hits = scan_text(col.astype(str))
        hits = {k: v for k, v in hits.items() if v}
        if hits:
            found[name] = hits
    return found
