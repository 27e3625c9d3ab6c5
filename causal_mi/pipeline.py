"""File -> verdict: load and validate everything first, then measure, then write outputs.

Validation happens before any measurement, so a bad file never yields a partial result.
Outputs are written to a temporary directory and moved into place at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from causal_mi.effects.measure import measure
from causal_mi.engine.runner import Progress
from causal_mi.errors import InputError
from causal_mi.models.loading import LoadedModel, load_model
from causal_mi.models.pool import SHARED, ModelPool
from causal_mi.properties.result import PropertyResult
from causal_mi.report import html, junit, markdown, results_json
from causal_mi.report.context import ReportContext, model_info, provenance
from causal_mi.report.destination import place
from causal_mi.spec.loader import load_hypothesis
from causal_mi.spec.resolve import ResolvedHypothesis, check_dims
from causal_mi.tasks.base import Task
from causal_mi.tasks.registry import build_task
from causal_mi.verify.verdicts import decide_claims


@dataclass
class Prepared:
    """A hypothesis that loaded cleanly: resolved, with its model and tokenized task."""

    hypothesis: ResolvedHypothesis
    model: LoadedModel
    task: Task
    variables: list = field(default_factory=list)  # discretized variables (SPEC 5)
    properties: list = field(default_factory=list)


def prepare(
    path: str | Path,
    *,
    device: str = "cpu",
    seed: int | None = None,
    precision: str = "fp32",
    models: ModelPool | None = None,
    hypothesis: ResolvedHypothesis | None = None,
) -> Prepared:
    """Load and validate one file against its model; raises :class:`InputError` (exit 2).
    ``seed`` replaces the file's task seed (stability checks across task samples);
    ``precision`` the weights' precision (see :func:`causal_mi.models.loading.load_model`);
    ``models`` the pool of loaded models to reuse (default: the process's shared pool);
    ``hypothesis``: ``path`` already loaded by :func:`load_hypothesis` (not parsed again)."""
    hyp = hypothesis if hypothesis is not None else load_hypothesis(path)
    if seed is not None:
        import dataclasses

        task_spec = hyp.spec.task.model_copy(update={"seed": seed})
        hyp = dataclasses.replace(hyp, spec=hyp.spec.model_copy(update={"task": task_spec}))
    key = (hyp.spec.model, str(hyp.base_dir), device, precision)
    model = (models or SHARED).get(
        key,
        lambda: load_model(
            hyp.spec.model,
            base_dir=hyp.base_dir,
            device=device,
            where=hyp.model_location,
            precision=precision,
        ),
    )
    problems = check_dims(hyp, model.dims) + _encoder_edges(hyp, model)
    if problems:
        raise InputError(problems)
    from causal_mi.properties.load import check_positions, load_properties

    variables, properties = load_properties(hyp, model.dims)
    task = build_task(hyp.spec, hyp.path, model.tokens)
    _check_positions(hyp, task)
    check_positions(hyp, variables, task)
    return Prepared(hyp, model, task, variables, properties)


def _encoder_edges(hyp: ResolvedHypothesis, model: LoadedModel) -> list:
    """Edges on an encoder, refused before anything runs (one sentence naming why)."""
    from causal_mi.engine.capabilities import capabilities
    from causal_mi.errors import Problem

    if not hyp.edges:
        return []
    can = capabilities(model)
    return [Problem(hyp.edges[0].location, can.path or "")] if can.encoder else []


def _check_positions(hyp: ResolvedHypothesis, task: Task) -> None:
    """Every site's positions exist in every prompt: integers inside the shortest prompt
    (clean or corrupt), roles defined by every example (a role with one token), the metric's
    role too; prompts of different lengths only with positioned sites."""
    from causal_mi.tasks.checks import position_problems

    problems = position_problems(hyp, task)
    if problems:
        raise InputError(problems)


def _properties(prep: Prepared, max_rows: int, cache=None) -> list[PropertyResult]:
    """Each property checked with Z3 over observed and interventional data (SPEC 5)."""
    if not prep.properties:
        return []
    from causal_mi.properties.check import check_properties

    spec = prep.hypothesis.spec
    return check_properties(
        prep.properties,
        prep.variables,
        prep.model,
        prep.task,
        ablation=spec.ablation,
        metric_name=spec.metric,
        max_rows=max_rows,
        cache=cache,
    )


def passed(ctx: ReportContext) -> bool:
    """Every claim holds and no property fails or holds only vacuously (SPEC 6: ``verify``
    exits 1 otherwise)."""
    return ctx.passed


def declare(
    prep: Prepared, *, ablation_check: bool = False, dowhy: bool = True, views: bool = False
):
    """The run plan of one verify (:class:`~causal_mi.engine.runplan.RunPlan`): what every
    stage :func:`evaluate` runs will read, declared before anything runs."""
    from causal_mi.effects import crosscheck as xc
    from causal_mi.effects import measure as quantities
    from causal_mi.engine.runplan import RunPlan
    from causal_mi.graph import analysis
    from causal_mi.properties import check
    from causal_mi.verify import robustness

    hyp = prep.hypothesis
    runs = RunPlan()
    quantities.declare_runs(hyp, prep.model, runs)
    if analysis.wanted(hyp, dowhy):
        analysis.declare_runs(hyp, runs, full=dowhy)
    if ablation_check and hyp.claims:
        robustness.declare_runs(hyp, prep.model, runs)
    if prep.properties:
        check.declare_runs(prep.properties, prep.variables, hyp.spec.ablation, runs)
    if dowhy:
        xc.declare_runs(hyp, runs)
    if views:
        from causal_mi.analysis import views as drawn

        drawn.declare_runs(hyp, prep.model, prep.task, runs)
    return runs


def evaluate(
    prep: Prepared,
    *,
    max_rows: int = 256,
    progress: Progress | None = None,
    views: bool = False,
    checkpoint_dir: Path | None = None,
    ablation_check: bool = False,
    dowhy: bool = True,
) -> ReportContext:
    """Measure and decide one prepared hypothesis; ``views`` adds the HTML report's
    heatmaps and attention patterns (extra passes on a bounded number of examples);
    ``dowhy`` cross-checks the indirect / direct / total claims with DoWhy (reported and
    flagged, never a verdict)."""
    started = time.time()
    hyp = prep.hypothesis
    from causal_mi.engine.cache import RunCache
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.runner import Engine
    from causal_mi.graph.analysis import analyse, wanted

    cache = RunCache(checkpoint_dir)  # every stage reads and extends the same runs
    runs = declare(prep, ablation_check=ablation_check, dowhy=dowhy, views=views)
    engine = Engine(prep.model, max_rows=max_rows, progress=progress, cache=cache)
    fn = metric(hyp.spec.metric)
    from causal_mi.effects.sweep import run_family

    runs.execute(engine, prep.task, fn, sweeps=run_family)  # every stage's runs, each once
    m = measure(hyp, prep.model, prep.task, max_rows=max_rows, cache=cache)
    graph = (
        analyse(hyp, prep.model, prep.task, m, max_rows=max_rows, full=dowhy, cache=cache)
        if wanted(hyp, dowhy)
        else None
    )
    verdict = decide_claims(hyp, m, graph.implications if graph else None)
    drawn = None
    ablations: dict = {}
    notes: list[str] = []
    if ablation_check and hyp.claims:
        from causal_mi.verify.robustness import ablation_check as check

        ablations, notes = check(
            hyp, prep.model, prep.task, verdict, max_rows=max_rows, cache=cache
        )
    from causal_mi.effects.crosscheck import CrossCheck, crosscheck

    if dowhy:
        if m.gap_estimate is None or m.gap_estimate.decidable:
            runs.execute(engine, prep.task, fn, gated=True)
        xcheck = crosscheck(hyp, prep.model, prep.task, m, max_rows=max_rows, cache=cache)
    else:
        xcheck = CrossCheck.skipped("disabled (--no-dowhy)")
    if views:
        from causal_mi.analysis.views import compute

        drawn = compute(hyp, prep.model, prep.task, max_rows=max_rows, engine=engine)
    return ReportContext(
        verdict,
        m,
        prep.task,
        model_info(prep.model),
        provenance(hyp.spec.task.seed, started),
        _properties(prep, max_rows, cache),
        notes=notes,
        views=drawn,
        ablations=ablations,
        dowhy=xcheck,
        causal_model=graph,
        runs=runs.to_json(),
    )


def render(ctx: ReportContext) -> dict[str, bytes]:
    """report.md, report.html, results.json and junit.xml of ``ctx``, rendered in memory."""
    tmp = Path(tempfile.mkdtemp(prefix=".causal-mi-render-"))
    try:
        markdown.write(ctx, tmp / "report.md")
        html.write(ctx, tmp / "report.html")
        results_json.write(ctx, tmp / "results.json")
        junit.write([ctx], tmp / "junit.xml")
        return {f.name: f.read_bytes() for f in sorted(tmp.iterdir())}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_outputs(ctx: ReportContext, out_dir: Path, *, with_junit: bool) -> None:
    """Write report.md, results.json (and junit.xml) atomically into ``out_dir``."""
    files = render(ctx)
    if not with_junit:
        files.pop("junit.xml")
    place(files, out_dir)
