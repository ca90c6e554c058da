"""Fixtures for the CI backend tests; the local runner of the generated workflows lives in actions_runner."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
