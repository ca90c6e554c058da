"""The shop example's data preparation (specs/shop.yaml): what its `dedupe` and `enrich` steps run.

    python -m examples.shop.prep dedupe --in IN.parquet --out OUT.parquet

`add_spend_per_order` is also the enrich step's `transform`: the runtime applies it to the training data,
and the model server applies it to every request's rows, so both compute the feature the same way.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer: the export repeats some customers verbatim."""
    return frame.drop_duplicates(subset=["customer_id"], keep="first").reset_index(drop=True)


def add_spend_per_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The average order value, the strongest signal of a repeat buyer."""
    return frame.assign(spend_per_order=(frame["total_spend"] / frame["orders"]).round(4))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["dedupe"])
    parser.add_argument("--in", dest="source", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    frame = pd.read_parquet(args.source)
    out = dedupe(frame)
    out.to_parquet(args.out, index=False)
    print(f"dedupe: {len(frame)} rows in, {len(out)} out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
