"""Terminal conventions shared by the commands: colour only on a terminal, NO_COLOR and FORCE_COLOR honoured
(https://no-color.org, https://force-color.org)."""

from __future__ import annotations

import os
from typing import IO


def use_color(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
