"""Generate the deterministic synthetic churn data of specs/churn.yaml: train.csv and reference.csv.

    python data/churn/make_data.py            # rewrites data/churn/{train,reference}.csv
    python data/churn/make_data.py --check    # exits 1 if the committed files differ from a fresh run

Churn follows a logistic model of tenure, monthly charges, support calls and contract type, so a small
MLP reaches an AUC around 0.8 without any single feature predicting it. No two rows share all feature
values and the target, so the train/test overlap check holds. Timestamps are fixed (no clock), so the
files are byte-identical on every run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CONTRACTS = np.array(["month-to-month", "one-year", "two-year"])
END = pd.Timestamp("2025-06-30T00:00:00Z")
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract"]


def make(n: int, seed: int, id_offset: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = int(n * 1.2)  # headroom for dropping duplicate rows
    tenure = np.minimum(rng.gamma(1.4, 18.0, m).astype(int), 72)
    # longer-tenured customers hold longer contracts
    p_long = 1 / (1 + np.exp(-(tenure - 30) / 12))
    u = rng.random(m)
    contract_idx = np.where(u < 1 - p_long, 0, np.where(u < 1 - 0.45 * p_long, 1, 2))
    charges = np.round(np.clip(rng.normal(70 - 8 * contract_idx, 22, m), 18.25, 125.0), 2)
    calls = rng.poisson(1.3, m)
    logit = (
        -0.9
        - 0.045 * tenure
        + 0.022 * (charges - 65)
        + 0.42 * calls
        + np.array([1.1, -0.2, -1.2])[contract_idx]
    )
    churned = (rng.random(m) < 1 / (1 + np.exp(-logit))).astype(int)
    seconds = rng.integers(0, 365 * 86400, m)
    df = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": CONTRACTS[contract_idx],
            "churned": churned,
            "_seconds": seconds,
        }
    )
    df = df.drop_duplicates(subset=[*FEATURES, "churned"]).head(n).reset_index(drop=True)
    if len(df) < n:
        raise RuntimeError(f"only {len(df)} distinct rows generated, wanted {n}")
    ids = np.arange(id_offset, id_offset + n)
    df.insert(0, "customer_id", [f"C{i:07d}" for i in ids])
    df.insert(1, "email", [f"customer{i}@example.com" for i in ids])
    times = END - pd.to_timedelta(df.pop("_seconds"), unit="s")
    df.insert(2, "event_time", times.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return df


def write(target: Path) -> dict[str, str]:
    out = {}
    for name, n, seed, offset in (("train", 5000, 20250630, 1), ("reference", 3000, 20240630, 5_000_001)):
        text = make(n, seed, offset).to_csv(index=False, lineterminator="\n")
        out[name] = text
        (target / f"{name}.csv").write_text(text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = write(Path(tmp))
        stale = [n for n, text in fresh.items() if (args.out / f"{n}.csv").read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run python data/churn/make_data.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
