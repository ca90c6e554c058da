"""Versions of data sets in a run: a data source as read, or what a preparation step wrote.

A step's data set output lives at RUN_DIR/steps/<step>/outputs/<name>.parquet; the IR's DataSetRef says which
version a step (or validate-data, through `data.prepared`) reads.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mlspec.ir.model import DataSetRef
from mlspec.runtime import StepError

if TYPE_CHECKING:
    import pandas as pd

    from mlspec.runtime.context import StepContext


def output_parts(step: str, name: str) -> tuple[str, ...]:
    return ("steps", step, "outputs", f"{name}.parquet")


def read(ctx: StepContext, ref: DataSetRef) -> pd.DataFrame:
    """The data set version `ref` names: the source (with --data overrides) or a step's Parquet output."""
    import pandas as pd

    from mlspec.runtime import data

    if ref.step is None:
        sources = data.sources_of(ctx.ir, ctx.data_overrides)
        if ref.name not in sources:
            raise StepError(f"the IR has no data source named '{ref.name}'")
        uri, fmt = sources[ref.name]
        return data.read_source(uri, fmt)
    parts = output_parts(ref.step, ref.name)
    if not ctx.run.exists(*parts):
        raise StepError(
            f"'{ref.name}' written by step '{ref.step}' is missing ({'/'.join(parts)} in {ctx.run.root}): "
            f"run '{ref.step}' first"
        )
    return pd.read_parquet(io.BytesIO(ctx.run.read_bytes(*parts)))


def lineage(ctx: StepContext, ref: DataSetRef) -> dict[str, str]:
    """{uri, sha256} of a version, for the model's lineage tags."""
    from mlspec.runtime import data

    if ref.step is None:
        uri, _ = data.sources_of(ctx.ir, ctx.data_overrides)[ref.name]
        return {"uri": uri, "sha256": data.content_hash(uri)}
    import hashlib

    parts = output_parts(ref.step, ref.name)
    return {"uri": ctx.run.uri(*parts), "sha256": hashlib.sha256(ctx.run.read_bytes(*parts)).hexdigest()}
