"""causal-mi: turn mechanistic-interpretability claims into checked facts.

The Python API is the CLI's engine::

    import causal_mi
    ctx = causal_mi.verify_file("hypotheses/induction.yaml")   # measure + decide
    causal_mi.passed(ctx), [c.estimate.point for c in ctx.verdict.claims]
    [(p.text, p.status) for p in ctx.properties]                 # causal_mi.PropertyResult
    causal_mi.write_outputs(ctx, "reports/induction")
    grid = causal_mi.act_patch(model, task, "head_out").grid           # a patching sweep

Names are imported lazily so ``import causal_mi`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_hypothesis": "causal_mi.spec.loader",
    "load_model": "causal_mi.models.loading",
    "build_task": "causal_mi.tasks.registry",
    "measure": "causal_mi.effects.measure",
    "sweep": "causal_mi.effects.sweep",
    "act_patch": "causal_mi.effects.patching",
    "passed": "causal_mi.pipeline",
    "ReportContext": "causal_mi.report.context",
    "ModelInfo": "causal_mi.report.context",
    "Measurement": "causal_mi.effects.measure",
    "Estimate": "causal_mi.stats.bootstrap",
    "GapEstimate": "causal_mi.stats.bootstrap",
    "Verdict": "causal_mi.verify.verdicts",
    "ClaimVerdict": "causal_mi.verify.verdicts",
    "PropertyResult": "causal_mi.properties.result",
    "decide_claims": "causal_mi.verify.verdicts",
    "Engine": "causal_mi.engine.runner",
    "Condition": "causal_mi.engine.plan",
    "Patch": "causal_mi.engine.plan",
    "parse_site": "causal_mi.spec.sites",
    "parse_claim": "causal_mi.spec.claims",
    "InputError": "causal_mi.errors",
    "CausalMIError": "causal_mi.errors",
}

__all__ = sorted([*_EXPORTS, "verify_file", "write_outputs", "__version__"])


# Not named ``verify``: that is the subpackage holding verdicts, and importing it would rebind
# the package attribute.
def verify_file(
    path: str, *, device: str = "cpu", max_rows: int = 256, precision: str = "fp32"
) -> Any:
    """Load, validate, measure and decide one hypothesis file; returns the frozen
    :class:`ReportContext`: ``.verdict`` (a :class:`Verdict` of :class:`ClaimVerdict`),
    ``.measurement`` (a :class:`Measurement` of :class:`Estimate`), ``.properties``
    (:class:`PropertyResult`) and ``.model_info`` (:class:`ModelInfo`). Raises
    :class:`InputError` on a bad file or model."""
    from causal_mi import pipeline

    prep = pipeline.prepare(path, device=device, precision=precision)
    return pipeline.evaluate(prep, max_rows=max_rows)


def write_outputs(ctx: Any, out_dir: str, *, junit: bool = True) -> None:
    """Write report.md, results.json (and junit.xml) for a verified context."""
    from pathlib import Path

    from causal_mi import pipeline

    pipeline.write_outputs(ctx, Path(out_dir), with_junit=junit)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'causal_mi' has no attribute {name!r}")
