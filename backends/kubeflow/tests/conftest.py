"""Make the Kubeflow backend tests' helpers (kfp_api.py) and the shared monitoring scenario
(tests/monitor_scenario.py, tests/recording_api.py) importable under --import-mode=importlib."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[3] / "tests"))
