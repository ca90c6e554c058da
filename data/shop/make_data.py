"""Generate the deterministic synthetic shop data of specs/shop.yaml: train.csv and reference.csv.

    python data/shop/make_data.py            # rewrites data/shop/{train,reference}.csv
    python data/shop/make_data.py --check    # exits 1 if the committed files differ from a fresh run

Whether a customer buys again follows a logistic model of the average spend per order (a feature the
spec's `enrich` step derives: total_spend / orders), the days since signup, support tickets and the country.
The raw train export repeats some customers (a retried export page: identical rows), so its customer_id is
not unique until the spec's `dedupe` step runs. The reference data holds no repeats and no derived column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
COUNTRIES = np.array(["de", "fr", "nl", "es"])
REPEATED = 0.05  # share of train rows exported twice


def make(n: int, seed: int, id_offset: int, repeats: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    orders = 1 + rng.poisson(4.0, n)
    per_order = np.round(np.clip(rng.lognormal(3.6, 0.55, n), 5.0, 400.0), 2)
    total_spend = np.round(orders * per_order, 2)
    signup_days = rng.integers(1, 2000, n)
    tickets = rng.poisson(0.8, n)
    country = rng.integers(0, len(COUNTRIES), n)
    logit = (
        -0.4
        + 0.06 * (total_spend / orders - 40)
        - 0.0006 * (signup_days - 1000)
        - 0.5 * tickets
        + np.array([0.3, -0.1, 0.2, -0.4])[country]
    )
    repeat_buyer = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame(
        {
            "customer_id": [f"S{i:07d}" for i in range(id_offset, id_offset + n)],
            "signup_days": signup_days,
            "orders": orders,
            "total_spend": total_spend,
            "support_tickets": tickets,
            "country": COUNTRIES[country],
            "repeat_buyer": repeat_buyer,
        }
    )
    twice = df.sample(frac=repeats, random_state=seed) if repeats else df.head(0)
    return pd.concat([df, twice]).sort_values("customer_id", kind="stable").reset_index(drop=True)


def write(target: Path) -> dict[str, str]:
    out = {}
    for name, n, seed, offset, repeats in (
        ("train", 4000, 20250701, 1, REPEATED),
        ("reference", 2000, 20240701, 5_000_001, 0.0),
    ):
        text = make(n, seed, offset, repeats).to_csv(index=False, lineterminator="\n")
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
            print(f"stale: {', '.join(stale)}; run python data/shop/make_data.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
