"""Mermaid text of the pipelines and the retraining triggers."""

from __future__ import annotations

from mlspec.ir.model import IR


def _label(text: str) -> str:
    return text.replace('"', "'")


def mermaid(ir: IR) -> str:
    lines = ["flowchart TD"]
    for pipeline in ir.pipelines:
        lines.append(f'  subgraph {pipeline.task_id}["{_label(pipeline.id)} pipeline"]')
        for step in pipeline.steps:
            suffix = f" x{step.fan_out.count}" if step.fan_out else ""
            gpu = step.placement.gpu
            pool = step.placement.node_pool
            gpu_text = f" [{gpu.count}x {gpu.product}{f' on {pool}' if pool else ''}]" if gpu else ""
            lines.append(
                f'    {pipeline.task_id}__{step.task_id}["{_label(step.display_name)}{suffix}{gpu_text}"]'
            )
        for step in pipeline.steps:
            for dep in step.depends_on:
                dep_id = next(s.task_id for s in pipeline.steps if s.id == dep)
                guard = "|" + " and ".join(step.conditions) + "|" if step.conditions else ""
                lines.append(
                    f"    {pipeline.task_id}__{dep_id} -->{guard} {pipeline.task_id}__{step.task_id}"
                )
        lines.append("  end")
    if ir.retraining:
        first = ir.pipelines[0]
        for trigger in ir.retraining.triggers:
            detail = (
                trigger.cron
                or (f"> {trigger.threshold}" if trigger.threshold is not None else "")
                or (
                    f"{trigger.metric} < {trigger.below}"
                    if trigger.metric
                    else f"{trigger.new_rows} new rows"
                )
            )
            lines.append(
                f'  trigger_{trigger.id.replace("-", "_")}(["{trigger.kind}: {_label(str(detail))}"])'
            )
            lines.append(
                f"  trigger_{trigger.id.replace('-', '_')} -.-> {first.task_id}__{first.steps[0].task_id}"
            )
    if ir.serving:
        last = ir.pipelines[0].steps[-1]
        lines.append(f'  serving[("serve {_label(ir.serving.model_uri)}")]')
        lines.append(f"  {ir.pipelines[0].task_id}__{last.task_id} --> serving")
    return "\n".join(lines) + "\n"
