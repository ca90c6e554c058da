"""The data flow of preparation steps (mlspec.ir.dataflow), as lint reports it (MS226, MS227) and as lowering
records it: which version each step reads, what validate-data checks, what the server must repeat."""

from __future__ import annotations

import pytest
from helpers_core import MINIMAL

import mlspec

SCHEMA = MINIMAL.replace(
    "      label: {type: int, values: [0, 1]}\n",
    "      y: {type: float}\n      ratio: {type: float}\n      label: {type: int, values: [0, 1]}\n",
)
DEDUPE = (
    "  - name: dedupe\n"
    "    command: [python, -m, prep, dedupe, --in, '{inputs.train}', --out, '{outputs.train}']\n"
    "    inputs: [train]\n    outputs: {train: {}}\n"
)
ENRICH = (
    "  - name: enrich\n    transform: prep:ratio\n    inputs: [train]\n"
    "    outputs: {train: {adds: [ratio]}}\n"
)


def lint(steps: str, extra: str = "") -> list[tuple[str, str]]:
    text = SCHEMA + extra + "steps:\n" + steps + "targets: [ir]\n"
    return [(d.code, d.message) for d in mlspec.lint(mlspec.loads(text))]


def lower(steps: str, extra: str = ""):
    return mlspec.lower(mlspec.loads(SCHEMA + extra + "steps:\n" + steps + "targets: [ir]\n"))


def test_ordered_writers_make_a_chain_that_validate_data_reads_last() -> None:
    ir = lower(DEDUPE + ENRICH + "    after: dedupe\n")
    steps = {s.id: s for s in ir.pipeline("training").steps}
    assert [(r.name, r.step) for r in steps["enrich"].user.inputs] == [("train", "dedupe")]
    assert [(r.name, r.step) for r in steps["dedupe"].user.inputs] == [("train", None)]
    assert {"dedupe", "enrich"} <= set(steps["validate-data"].depends_on)
    assert [(r.name, r.step) for r in ir.data.prepared] == [("train", "enrich")]
    assert [t.function for t in ir.data.transforms] == ["prep:ratio"]
    assert next(c for c in ir.data.columns if c.name == "ratio").produced_by == "enrich"
    # each version is checked against the columns it has by then: ratio only from enrich on
    dedupe_cols = [c.name for c in steps["dedupe"].user.outputs[0].columns]
    enrich_cols = [c.name for c in steps["enrich"].user.outputs[0].columns]
    assert "ratio" not in dedupe_cols and "ratio" in enrich_cols


def test_reading_a_data_set_orders_the_reader_after_its_writer() -> None:
    stats = (
        "  - name: stats\n    command: [python, -m, prep, stats, --out, '{outputs.stats}']\n"
        "    outputs: {stats: {columns: {key: {type: string}, mean: {type: float}}}}\n"
        "  - name: use-stats\n    command: [python, -m, prep, use, --stats, '{inputs.stats}']\n"
        "    inputs: [stats]\n"
    )
    ir = lower(stats)
    use = next(s for s in ir.pipeline("training").steps if s.id == "use-stats")
    assert use.depends_on == ["stats"] and [(r.name, r.step) for r in use.user.inputs] == [("stats", "stats")]


@pytest.mark.parametrize(
    ("steps", "extra", "message"),
    [
        (
            DEDUPE + ENRICH,
            "",
            "steps 'dedupe' and 'enrich' both write 'train' and neither runs after the other",
        ),
        (DEDUPE.replace("inputs: [train]", "inputs: [customers]"), "", "reads 'customers'"),
        (
            ENRICH.replace("adds: [ratio]", "adds: [ratios]") + "    command: [x]\n",
            "",
            "data.schema does not declare",
        ),
        (DEDUPE + "    after: validate-data\n", "", "runs after validate-data"),
        (
            "  - name: t\n    transform: prep:t\n    inputs: [train, reference]\n    outputs: {train: {}}\n",
            "",
            "needs one input and one output of the same name",
        ),
        (
            "  - name: s\n    command: [python, s.py, '{inputs.reference}']\n",
            "",
            "uses {inputs.reference} but does not list 'reference' in inputs",
        ),
        ("  - name: s\n    command: [python, s.py]\n    outputs: {stats: {}}\n", "", "without its columns"),
        (
            ENRICH,
            "  raw_checks: [{check: not_null, columns: [ratio]}]\n",
            "raw check names column 'ratio', which step 'enrich' adds",
        ),
    ],
)
def test_broken_or_ambiguous_flows(steps: str, extra: str, message: str) -> None:
    found = lint(steps, extra)
    assert any(code == "MS226" and message in text for code, text in found), found


def test_a_feature_added_without_a_transform_never_reaches_serving() -> None:
    command = ENRICH.replace("transform: prep:ratio", "command: [python, -m, prep, '{outputs.train}']")
    assert [code for code, _ in lint(command)] == ["MS227"]
    assert lint(ENRICH) == []
