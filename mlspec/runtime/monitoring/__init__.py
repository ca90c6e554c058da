"""The monitor's parts, one job per module; `mlspec.runtime.monitor.run_monitor` puts them together.

  plan        what to count, fixed before any row is read: bin edges and categories from the reference
              profile, bounds and types from the spec's schema, the window
  summary     mergeable per-batch summaries: summarize_batch(batch, plan), merge(a, b) (exact)
  window      the prediction log: its partitions, streaming one partition into a Summary, the labels
  reference   the reference profile saved with the model (run directory or registry)
  quality     live data quality (nulls, out-of-range values, unseen categories) from a Summary
  performance live metrics on the labeled predictions of a Summary
  metrics     report.json's numbers as Prometheus text (metrics.prom)
  report      the self-contained HTML report and the Markdown summary
  svg         the report's charts, as inline SVG
  distributions  reference and current histograms for the report, from the profile and a Summary
  tracking    the monitoring run in MLflow
Drift scores come from `mlspec.runtime.drift.score(profile, summary, ...)`.
"""

from __future__ import annotations

from mlspec.runtime import StepError


class MonitorError(StepError):
    """The monitor cannot run: no log, an empty window, no reference profile; the message says which."""
