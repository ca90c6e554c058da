"""Write data/breast_cancer/train.csv from scikit-learn's bundled Wisconsin breast cancer data (no network).

    python data/breast_cancer/make_data.py

Column names become identifiers ("mean radius" -> mean_radius); the target `malignant` is 1 for malignant
tumours (scikit-learn codes malignant as 0, so it is flipped). Deterministic: the same bytes on every run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def frame():
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    df = bunch.data.copy()
    df.columns = [re.sub(r"[^0-9a-zA-Z]+", "_", c).strip("_").lower() for c in df.columns]
    df["malignant"] = (bunch.target == 0).astype(int)
    return df


def main() -> int:
    (HERE / "train.csv").write_text(frame().to_csv(index=False, lineterminator="\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
