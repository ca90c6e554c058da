"""PromQL over the model server's metrics: one definition of "error" and "slow" for the SLO alerts and the
rollout analysis alike, both read from the IR's `serving.slo`.

- An error is a response whose HTTP status class is in `slo.error_status_classes` ([5] -> code=~"5..").
- A slow request is one above a latency threshold, read from the histogram bucket whose `le` equals the
  threshold exactly (lowering adds every threshold to the server's buckets), so no interpolation is
  involved: the slow ratio is 1 - bucket(le) / count.
"""

from __future__ import annotations

import math

from mlspec import contracts

BUCKET = f"{contracts.REQUEST_DURATION}_bucket"
COUNT = f"{contracts.REQUEST_DURATION}_count"


def go_float(value: float) -> str:
    """`le` label text as prometheus_client writes it (its floatToGoString)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def number(value: float) -> str:
    """A threshold as PromQL/expr text, free of float noise (0.1 * 3 -> 0.3)."""
    return repr(round(value, 10))


def job_matcher(jobs: list[str]) -> str:
    """Prometheus `job` (the Service name) equal to one of `jobs`."""
    return f'job="{jobs[0]}"' if len(jobs) == 1 else f'job=~"{"|".join(jobs)}"'


def error_matcher(status_classes: list[int]) -> str:
    """The label matcher for error responses: [5] -> code=~"5..", [4, 5] -> code=~"4..|5.."."""
    return f'{contracts.LABEL_CODE}=~"{"|".join(f"{c}.." for c in status_classes)}"'


def error_ratio(selector: str, status_classes: list[int], window: str, agg: str = "sum") -> str:
    """The fraction of requests answered with an error status over `window`."""
    errors = f"{selector},{error_matcher(status_classes)}"
    total = contracts.REQUESTS_TOTAL
    return f"{agg} (rate({total}{{{errors}}}[{window}]))\n/\n{agg} (rate({total}{{{selector}}}[{window}]))"


def slow_ratio(selector: str, le_seconds: float, window: str, agg: str = "sum") -> str:
    """The fraction of requests slower than the bucket boundary `le_seconds` over `window`."""
    le = go_float(le_seconds)
    return (
        f'1 - (\n  {agg} (rate({BUCKET}{{{selector},le="{le}"}}[{window}]))\n  /\n'
        f"  {agg} (rate({COUNT}{{{selector}}}[{window}]))\n)"
    )


def quantile(selector: str, q: float, window: str, by: str) -> str:
    """An interpolated quantile for dashboards (never for a verdict: alerts and analyses read exact buckets)."""
    return f"histogram_quantile({number(q)}, sum by ({by}, le) (rate({BUCKET}{{{selector}}}[{window}])))"
