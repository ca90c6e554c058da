"""The rollout analysis: does the challenger earn the champion alias? (`mlspec analyze`, and the cluster's
analysis CronJob, which runs the same command.)

    analyze(ir, ...) -> verdict      status idle | pending | pass | fail, with every check and its numbers
    apply(ir, verdict) -> what moved  pass: promote the challenger; fail: reject it (champion stays)

The IR's `serving.rollout.analysis` says what to judge (mlspec.ir.lower decides it per strategy):

  shadow      the champion's and the shadow's answers to the same mirrored requests (paired by request id and
              row, from the prediction log): the share of requests both predict the same class
              (classification), the Kolmogorov-Smirnov distance between their scores, and the shadow
              server's error rate and slow-request rate;
  slo         (canary) the challenger variant's error rate and slow-request rate;
  experiment  (a-b) the metric on each variant's labeled requests, and a one-sided permutation test of the
              difference (the challenger must be better at the significance level).

Error and slow-request rates come from the servers' metrics: Prometheus (`--prometheus`, MLSPEC_PROMETHEUS_URL;
the `variant` label the ServiceMonitor sets, over the rollout's time) or each variant's /metrics endpoint
(`--metrics VARIANT=URL`: counts since that server started). Without either they are not measured, and the
analysis cannot pass. The verdict waits (pending) until the challenger has run `duration_seconds` with
`min_samples` requests; an SLO breach with enough requests fails it at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlspec import contracts
from mlspec.runtime import StepError
from mlspec.runtime import now as runtime_now

LOG_COLUMNS = ["ts", "request_id", "row", "model_version", "variant", "source", "outputs"]
PERMUTATIONS = 999


class AnalysisError(StepError):
    """The analysis cannot read what it needs (the message names it)."""


@dataclass
class Traffic:
    """One variant's requests in the analysis window, from its server's metrics."""

    requests: float
    errors: float
    slow: float | None  # requests slower than the latency limit (None: no limit)


# ----------------------------------------------------------------------------------------------- the verdict


def analyze(
    ir,
    *,
    now: pd.Timestamp | None = None,
    log: str | None = None,
    labels: str | None = None,
    metrics: dict[str, str] | None = None,
    prometheus: str | None = None,
) -> dict[str, Any]:
    from mlspec.runtime import registry

    a = ir.serving.rollout.analysis if ir.serving else None
    now = now if now is not None else runtime_now()
    out: dict[str, Any] = {"system": ir.system.name, "now": now.isoformat(), "checks": []}
    if a is None or a.kind == "offline":
        return {**out, "status": "idle", "reason": "this rollout promotes at training (no online analysis)"}
    out["kind"] = a.kind
    c = registry.client(ir)
    champion = registry.alias_version(ir, ir.registry.champion_alias, c)
    challenger = registry.alias_version(ir, ir.registry.challenger_alias, c)
    out.update(champion=champion, challenger=challenger)
    if challenger is None or challenger == champion:
        return {**out, "status": "idle", "reason": "no challenger beside the champion"}
    tags = registry.version_tags(ir, challenger, c)
    stage = tags.get(registry.STAGE_TAG, "")
    if stage != a.kind or registry.ROLLOUT_STARTED_TAG not in tags:
        return {
            **out,
            "status": "idle",
            "reason": f"version {challenger} is {stage or 'untagged'}, not in a rollout",
        }
    started = pd.Timestamp(tags[registry.ROLLOUT_STARTED_TAG]).tz_convert("UTC")
    elapsed = (now - started).total_seconds()
    out.update(started_at=started.isoformat(), elapsed_seconds=elapsed, duration_seconds=a.duration_seconds)
    rows = read_log(ir, log, started, now)
    if a.kind == "shadow":
        checks = _shadow(ir, a, rows, champion, challenger)
    elif a.kind == "slo":
        checks = _challenger_volume(a, rows, challenger)
    else:
        checks = _experiment(ir, a, rows, champion, challenger, labels)
    if a.kind in ("shadow", "slo"):
        checks += _slo(ir, a, a.challenger_variant, started, now, metrics, prometheus)
    out["checks"] = checks
    out["status"], out["reason"] = _status(checks, elapsed, a.duration_seconds)
    return out


def _status(checks: list[dict[str, Any]], elapsed: float, duration: int) -> tuple[str, str]:
    failed = [c for c in checks if c["passed"] is False]
    breached = [c for c in failed if c.get("slo")]
    if breached:  # an SLO breach with enough requests aborts at once, like an Argo Rollouts analysis
        return "fail", "; ".join(c["detail"] for c in breached)
    if elapsed < duration:
        return "pending", f"the rollout has run {elapsed:.0f}s of {duration}s"
    if failed:
        return "fail", "; ".join(c["detail"] for c in failed)
    waiting = [c for c in checks if c["passed"] is None]
    if waiting:
        return "pending", "; ".join(c["detail"] for c in waiting)
    return "pass", "every check passed"


def _check(
    name: str, passed: bool | None, detail: str, value: Any = None, limit: Any = None, slo: bool = False
) -> dict[str, Any]:
    return {"name": name, "passed": passed, "detail": detail, "value": value, "limit": limit, "slo": slo}


def apply(ir, verdict: dict[str, Any], *, by: str | None = None) -> dict[str, Any] | None:
    """Promote on pass, reject on fail; pending and idle move nothing."""
    from mlspec.runtime import registry

    measured = {c["name"]: c["value"] for c in verdict["checks"] if isinstance(c.get("value"), int | float)}
    who = by or "mlspec analyze"
    if verdict["status"] == "pass":
        reason = f"{verdict['kind']} analysis passed: {_summary(verdict)}"
        return registry.move_champion(
            ir, verdict["challenger"], action="promote", by=who, reason=reason[:1000], metrics=measured
        )
    if verdict["status"] == "fail":
        reason = f"{verdict['kind']} analysis failed: {verdict['reason']}"
        return registry.reject(ir, verdict["challenger"], by=who, reason=reason[:1000], metrics=measured)
    return None


def _summary(verdict: dict[str, Any]) -> str:
    return "; ".join(c["detail"] for c in verdict["checks"])


# ----------------------------------------------------------------------------------------------- the log


def read_log(ir, log: str | None, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The prediction log's rows logged in (start, end], load-test traffic left out."""
    from mlspec.runtime.monitoring import window
    from mlspec.runtime.monitoring.summary import timestamps_ns

    base = log or os.environ.get("MLSPEC_PREDICTION_LOG") or ir.serving.prediction_log
    frames = []
    for part in window.partitions(base, start, end)[0]:
        for uri in part.files:
            for batch in window.iter_batches(uri, LOG_COLUMNS):
                frames.append(batch if isinstance(batch, pd.DataFrame) else batch.to_pandas())
    if not frames:
        return pd.DataFrame(columns=LOG_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    ts = timestamps_ns(rows["ts"])
    keep = (ts > start.value) & (ts <= end.value)
    if "source" in rows.columns:
        excluded = ir.monitoring.excluded_sources if ir.monitoring else [contracts.LOADTEST_SOURCE]
        keep &= ~rows["source"].astype("string").isin(excluded).to_numpy(dtype=bool, na_value=False)
    rows = rows.loc[keep].reset_index(drop=True)
    rows["variant"] = (
        rows["variant"].astype("string").fillna(contracts.CHAMPION)
        if "variant" in rows.columns
        else contracts.CHAMPION
    )
    for key in ("model_version", "request_id"):
        rows[key] = rows[key].astype(str)
    if "row" not in rows.columns:
        rows["row"] = 0
    return rows


def _of(rows: pd.DataFrame, variant: str, version: str | None) -> pd.DataFrame:
    return rows[(rows["variant"] == variant) & (rows["model_version"] == str(version))]


def _outputs(rows: pd.DataFrame) -> np.ndarray:
    if not len(rows):
        return np.zeros((0, 1))
    return np.vstack([np.asarray(o, dtype=np.float64).ravel() for o in rows["outputs"]])


def _scores(ir, outputs: np.ndarray) -> np.ndarray:
    """One number per answer: the positive class's probability, the top probability, or the prediction."""
    if ir.data.task == "regression" or outputs.shape[1] == 1:
        return outputs[:, 0]
    return outputs[:, 1] if outputs.shape[1] == 2 else outputs.max(axis=1)


# ----------------------------------------------------------------------------------------------- the checks


def _shadow(ir, a, rows: pd.DataFrame, champion: str | None, challenger: str) -> list[dict[str, Any]]:
    from scipy.stats import ks_2samp

    keys = ["request_id", "row"]
    first = _of(rows, contracts.CHAMPION, champion)[[*keys, "outputs"]]
    second = _of(rows, contracts.SHADOW, challenger)[[*keys, "outputs"]]
    paired = first.merge(second, on=keys, suffixes=("_champion", "_shadow"))
    n = len(paired)
    enough = n >= a.min_samples
    checks = [
        _check(
            "paired_requests",
            True if enough else None,
            f"{n} mirrored requests answered by both (need {a.min_samples})",
            n,
            a.min_samples,
        )
    ]
    if not enough:
        return checks
    ours = _outputs(paired.rename(columns={"outputs_champion": "outputs"}))
    theirs = _outputs(paired.rename(columns={"outputs_shadow": "outputs"}))
    if ir.data.task == "classification" and a.min_agreement is not None and ours.shape[1] > 1:
        agreement = float((ours.argmax(axis=1) == theirs.argmax(axis=1)).mean())
        checks.append(
            _check(
                "agreement",
                agreement >= a.min_agreement,
                f"both predict the same class for {agreement:.1%} (need {a.min_agreement:.0%})",
                agreement,
                a.min_agreement,
            )
        )
    if a.max_score_distance is not None:
        distance = float(ks_2samp(_scores(ir, ours), _scores(ir, theirs)).statistic)
        checks.append(
            _check(
                "score_distance",
                distance <= a.max_score_distance,
                f"KS distance of the scores {distance:.3f} (at most {a.max_score_distance})",
                distance,
                a.max_score_distance,
            )
        )
    return checks


def _challenger_volume(a, rows: pd.DataFrame, challenger: str) -> list[dict[str, Any]]:
    n = len(_of(rows, a.challenger_variant, challenger))
    return [
        _check(
            "challenger_requests",
            True if n >= a.min_samples else None,
            f"{n} requests answered by the challenger (need {a.min_samples})",
            n,
            a.min_samples,
        )
    ]


def _experiment(
    ir, a, rows: pd.DataFrame, champion: str | None, challenger: str, labels: str | None
) -> list[dict[str, Any]]:
    """The metric per variant on labeled requests, and a permutation test of the challenger's advantage."""
    from scipy.stats import permutation_test

    from mlspec.runtime.monitoring import window

    base = labels or os.environ.get("MLSPEC_LABELS") or f"{ir.serving.prediction_log.rstrip('/')}/labels"
    label_rows = window.read_labels(base, ir.data.target)
    frames = {}
    for variant, version in ((contracts.CHAMPION, champion), (contracts.CHALLENGER, challenger)):
        own = _of(rows, variant, version)
        if len(label_rows):
            keys = ["request_id", "row"] if "row" in label_rows.columns else ["request_id"]
            own = own.merge(label_rows, on=keys, how="inner")
        else:
            own = own.iloc[0:0].assign(__label__=pd.Series(dtype=object))
        frames[variant] = own.reset_index(drop=True)
    counts = {v: len(f) for v, f in frames.items()}
    enough = min(counts.values()) >= a.min_samples
    checks = [
        _check(
            "labeled_requests",
            True if enough else None,
            "labeled requests: "
            + ", ".join(f"{v} {n}" for v, n in counts.items())
            + f" (need {a.min_samples} each)",
            min(counts.values()),
            a.min_samples,
        )
    ]
    if not enough:
        return checks
    both = pd.concat([frames[contracts.CHAMPION], frames[contracts.CHALLENGER]], ignore_index=True)
    y, outputs = _encoded(ir, both)
    first = np.arange(counts[contracts.CHAMPION])
    second = np.arange(counts[contracts.CHAMPION], len(both))
    sign = 1.0 if a.goal == "maximize" else -1.0

    def advantage(champion_idx: np.ndarray, challenger_idx: np.ndarray, axis: int = -1) -> float:
        return sign * (
            _metric(ir, a.metric, y[challenger_idx.astype(int)], outputs[challenger_idx.astype(int)])
            - _metric(ir, a.metric, y[champion_idx.astype(int)], outputs[champion_idx.astype(int)])
        )

    values = {
        contracts.CHAMPION: _metric(ir, a.metric, y[first], outputs[first]),
        contracts.CHALLENGER: _metric(ir, a.metric, y[second], outputs[second]),
    }
    test = permutation_test(
        (first, second),
        advantage,
        permutation_type="independent",
        vectorized=False,
        n_resamples=PERMUTATIONS,
        alternative="greater",
        random_state=np.random.default_rng(ir.training.seed),
    )
    p = float(test.pvalue)
    better = p < a.significance
    checks.append(
        _check(
            "experiment",
            better,
            f"{a.metric}: challenger {values[contracts.CHALLENGER]:.4f} vs champion "
            f"{values[contracts.CHAMPION]:.4f}, one-sided permutation p = {p:.4f} "
            f"({'below' if better else 'not below'} {a.significance})",
            p,
            a.significance,
        )
    )
    for variant, value in values.items():
        checks.append(
            _check(f"{a.metric}_{variant}", True, f"{a.metric} of the {variant}: {value:.4f}", value)
        )
    return checks


def _encoded(ir, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    outputs = _outputs(frame)
    if ir.data.task == "regression":
        return pd.to_numeric(frame["__label__"], errors="coerce").to_numpy(dtype=float), outputs[:, 0]
    from mlspec.runtime.monitoring.performance import _classes

    classes = _classes(ir, frame["__label__"], None)
    lookup = {str(c): i for i, c in enumerate(classes)}
    codes = frame["__label__"].astype(str).map(lookup)
    if codes.isna().any():
        unknown = sorted(frame["__label__"][codes.isna()].astype(str).unique())[:5]
        raise AnalysisError(f"labels outside the target's values {classes}: {unknown}")
    if outputs.shape[1] == 1 and len(classes) == 2:
        outputs = np.column_stack([1 - outputs[:, 0], outputs[:, 0]])
    return codes.to_numpy(dtype=int), outputs


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney U) identity: sklearn's roc_auc_score, without its overhead."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(score)  # ties get the average rank, as the ROC curve's trapezoids count them
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _metric(ir, metric: str, y: np.ndarray, outputs: np.ndarray) -> float:
    """One metric, defined as mlspec.runtime.evaluation defines it (computed alone: the permutation test
    evaluates it a thousand times)."""
    from sklearn import metrics as skm

    from mlspec.runtime.evaluation import canonical

    name = canonical(metric)
    if ir.data.task == "regression":
        regression = {
            "rmse": lambda: float(np.sqrt(skm.mean_squared_error(y, outputs))),
            "mae": lambda: float(skm.mean_absolute_error(y, outputs)),
            "r2": lambda: float(skm.r2_score(y, outputs)),
        }
        if name not in regression:
            raise AnalysisError(f"the a-b metric {metric!r} does not apply to regression")
        return regression[name]()
    pred = outputs.argmax(axis=1)
    classes = list(range(outputs.shape[1]))
    average = "binary" if len(classes) == 2 else "macro"
    if name == "accuracy":
        return float((pred == y).mean())
    if name in ("precision", "recall", "f1"):
        fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]
        return float(fn(y, pred, average=average, zero_division=0))
    if name == "auc":
        if len(np.unique(y)) < 2:
            return float("nan")
        if len(classes) == 2:
            return _binary_auc(y, outputs[:, 1])
        return float(skm.roc_auc_score(y, outputs, multi_class="ovr", labels=classes))
    if name == "log_loss":
        clipped = np.clip(outputs, 1e-7, 1)  # logged as float32: renormalize the rounding away
        return float(skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=classes))
    raise AnalysisError(f"the a-b metric {metric!r} does not apply to classification")


# ----------------------------------------------------------------------------------------------- SLO checks


def _slo(
    ir,
    a,
    variant: str,
    started: pd.Timestamp,
    now: pd.Timestamp,
    metrics: dict[str, str] | None,
    prometheus: str | None,
) -> list[dict[str, Any]]:
    if a.max_error_rate is None and a.max_latency_bucket_seconds is None:
        return []
    slo = ir.serving.slo
    prometheus = prometheus or os.environ.get("MLSPEC_PROMETHEUS_URL")
    if metrics and variant in metrics:
        traffic = scrape(metrics[variant], slo.error_status_classes, a.max_latency_bucket_seconds)
    elif prometheus:
        window = max(60, int((now - started).total_seconds()))
        traffic = query(prometheus, ir, variant, window, now, a.max_latency_bucket_seconds)
    else:
        return [
            _check(
                "slo",
                None,
                f"error rate and latency of the {variant} are not measured: give --prometheus or "
                f"--metrics {variant}=URL",
            )
        ]
    enough = traffic.requests >= a.min_samples
    checks = []
    if a.max_error_rate is not None:
        rate = traffic.errors / traffic.requests if traffic.requests else 0.0
        checks.append(
            _check(
                "error_rate",
                (rate <= a.max_error_rate) if enough else None,
                f"{variant} error rate {rate:.4f} over {traffic.requests:.0f} requests "
                f"(at most {a.max_error_rate})",
                rate,
                a.max_error_rate,
                slo=True,
            )
        )
    if a.max_latency_bucket_seconds is not None and traffic.slow is not None:
        budget = round(1 - slo.latency_quantile, 10)
        ratio = traffic.slow / traffic.requests if traffic.requests else 0.0
        checks.append(
            _check(
                "slow_requests",
                (ratio <= budget) if enough else None,
                f"{variant}: {ratio:.2%} of requests slower than {a.max_latency_p99_ms:g} ms (at most "
                f"{budget:.0%})",
                ratio,
                budget,
                slo=True,
            )
        )
    return checks


def scrape(url: str, error_classes: list[int], bucket: float | None) -> Traffic:
    """A server's /metrics: requests, errors and slow requests since it started."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(url, timeout=10).raise_for_status().text
    except httpx.HTTPError as exc:
        raise AnalysisError(f"cannot read the metrics at {url}: {exc}") from exc
    requests = errors = count = within = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == contracts.REQUESTS_TOTAL:
                requests += sample.value
                if sample.labels.get(contracts.LABEL_CODE, "")[:1] in {str(c) for c in error_classes}:
                    errors += sample.value
            elif sample.name == f"{contracts.REQUEST_DURATION}_count":
                count += sample.value
            elif (
                sample.name == f"{contracts.REQUEST_DURATION}_bucket"
                and bucket is not None
                and abs(float(sample.labels["le"]) - bucket) < 1e-12
            ):
                within += sample.value
    return Traffic(requests, errors, None if bucket is None else count - within)


def query(base: str, ir, variant: str, window_s: int, now: pd.Timestamp, bucket: float | None) -> Traffic:
    """The variant's requests, errors and slow requests over the last window_s seconds, from Prometheus."""
    import httpx
    from prometheus_client.utils import floatToGoString

    sel = f'namespace="{ir.system.namespace}",{contracts.LABEL_VARIANT}="{variant}"'
    classes = "|".join(str(c) for c in ir.serving.slo.error_status_classes)

    def value(expr: str) -> float:
        try:
            resp = httpx.get(
                f"{base.rstrip('/')}/api/v1/query",
                params={"query": expr, "time": f"{now.timestamp():.3f}"},
                timeout=30,
            ).raise_for_status()
        except httpx.HTTPError as exc:
            raise AnalysisError(f"Prometheus at {base} did not answer: {exc}") from exc
        result = resp.json().get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else 0.0

    def increase(metric: str, extra: str = "") -> float:
        return value(f"sum(increase({metric}{{{sel}{extra}}}[{window_s}s]))")

    requests = increase(contracts.REQUESTS_TOTAL)
    errors = increase(contracts.REQUESTS_TOTAL, f',{contracts.LABEL_CODE}=~"({classes}).."')
    slow = None
    if bucket is not None:
        within = increase(f"{contracts.REQUEST_DURATION}_bucket", f',le="{floatToGoString(bucket)}"')
        slow = increase(f"{contracts.REQUEST_DURATION}_count") - within
    return Traffic(requests, errors, slow)
