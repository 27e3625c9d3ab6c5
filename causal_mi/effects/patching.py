"""Activation-patching sweeps, the ``get_act_patch_*`` family as one call.

``act_patch(model, task, "resid_pre")`` patches every index of a site family from one run
into the other and returns the mean metric per index, labelled (pandas) and as a grid ready
for a heatmap. ``direction="restore"`` runs the corrupt prompts with each clean activation
patched in (TransformerLens' convention); ``direction="ablate"`` runs the clean prompts with
each activation taken from the corrupt run. Every index is one engine condition, so all of
them are stacked into as few forward passes as the row budget allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from causal_mi.engine.metrics import metric
from causal_mi.engine.noise import embedding_noise
from causal_mi.engine.plan import Condition, Patch, site_patches
from causal_mi.engine.runner import Engine, Progress
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.sites import Kind, Site
from causal_mi.tasks.base import Task

# family -> (axes of the grid)
FAMILIES = {
    "resid_pre": ("layer", "pos"),
    "resid_mid": ("layer", "pos"),
    "resid_post": ("layer", "pos"),
    "attn_out": ("layer", "pos"),
    "mlp_out": ("layer", "pos"),
    "head_out": ("layer", "head"),
    "head_q": ("layer", "head"),
    "head_k": ("layer", "head"),
    "head_v": ("layer", "head"),
    "head_pattern": ("layer", "head"),
    "head_out_by_pos": ("layer", "pos", "head"),
    "neurons": ("neuron",),
}


@dataclass(frozen=True)
class PatchSweep:
    family: str
    axes: tuple[str, ...]
    grid: np.ndarray  # mean metric per index, shaped by ``axes``
    per_example: np.ndarray  # [n_indices, n_examples]
    index: list[tuple[int, ...]]  # grid coordinates of each row of per_example
    clean: float
    corrupt: float
    flops: int = 0  # arithmetic the incremental engine did (0: hook engine)
    seconds: float = 0.0
    clean_values: np.ndarray | None = None  # [n_examples] metric of the clean run
    corrupt_values: np.ndarray | None = None

    def table(self):
        """One row per index: its coordinates, the mean metric, and the fraction of G."""
        import pandas as pd

        g = self.clean - self.corrupt
        df = pd.DataFrame(self.index, columns=list(self.axes))
        df["metric"] = self.per_example.mean(axis=1)
        df["fraction_of_G"] = (df["metric"] - self.corrupt) / g if g else np.nan
        return df


def sweep_conditions(
    family: str, model: LoadedModel, length: int, direction: str, layer: int = 0
) -> tuple[list[Condition], list[tuple[int, ...]], tuple[int, ...]]:
    """The conditions of a sweep of ``family`` over prompts of ``length`` tokens, each
    index's grid coordinates, and the grid's shape. Both executors compute exactly these
    conditions (the incremental engine in this order), so their cells share addresses."""
    d = model.dims
    base, source = ("corrupt", "clean") if direction == "restore" else ("clean", "corrupt")
    conds, index = [], []

    def add(patches, idx):
        conds.append(Condition(base, tuple(patches)))
        index.append(idx)

    if family in ("resid_pre", "resid_mid", "resid_post", "mlp_out"):
        if family in ("resid_mid", "mlp_out") and d.attn_only:
            raise ValueError(f"'{family}' needs MLPs; this model is attention-only")
        for la in range(d.n_layers):
            for p in range(length):
                s = (
                    Site(Kind.MLP, la)
                    if family == "mlp_out"
                    else Site(Kind.RESID, la, channel=family)
                )
                add(site_patches([s.at((p,))], source), (la, p))
        return conds, index, (d.n_layers, length)
    if family == "attn_out":  # all heads of a layer at one position (b_O is shared)
        for la in range(d.n_layers):
            for p in range(length):
                add([Patch(f"blocks.{la}.attn.hook_z", source, frozenset({(p, None)}))], (la, p))
        return conds, index, (d.n_layers, length)
    if family.startswith("head_") and family != "head_out_by_pos":
        ch = family.split("_")[1]
        for la in range(d.n_layers):
            for h in range(d.n_heads):
                if ch == "out":
                    s = Site(Kind.HEAD, la, h)
                elif ch == "pattern":
                    s = Site(Kind.PATTERN, la, h)
                else:
                    s = Site(Kind.HEAD_INPUT, la, h, channel=ch)
                add(site_patches([s], source), (la, h))
        return conds, index, (d.n_layers, d.n_heads)
    if family == "head_out_by_pos":
        for la in range(d.n_layers):
            for p in range(length):
                for h in range(d.n_heads):
                    add(site_patches([Site(Kind.HEAD, la, h, pos=(p,))], source), (la, p, h))
        return conds, index, (d.n_layers, length, d.n_heads)
    if family == "neurons":
        if d.attn_only:
            raise ValueError("'neurons' needs MLPs; this model is attention-only")
        for i in range(d.d_mlp):
            add(site_patches([Site(Kind.NEURON, layer, index=i)], source), (i,))
        return conds, index, (d.d_mlp,)
    raise ValueError(f"unknown sweep family '{family}'; valid: {', '.join(FAMILIES)}")


def act_patch(
    model: LoadedModel,
    task: Task,
    family: str,
    *,
    direction: str = "restore",
    metric_name: str = "logit_diff",
    layer: int = 0,
    max_rows: int = 256,
    max_memory: int | None = None,
    method: str = "auto",
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> PatchSweep:
    """Patch every index of ``family`` (``neurons`` sweeps the neurons of ``layer``).

    ``method="incremental"`` runs the incremental engine (each patched run starts at its
    layer and first changed position; see :mod:`causal_mi.engine.incremental`),
    ``"hooks"`` one full bridge pass per stacked batch of patches; ``"auto"`` takes the
    incremental engine where the model's architecture allows. ``max_memory`` (bytes) bounds
    the incremental engine's working memory (default: scaled to the workload, at most 64
    MiB, :func:`causal_mi.engine.budget.sweep_budget`); ``max_rows`` the hook engine's
    rows per pass. All examples must have one token length.

    ``engine``: read and extend that engine's run cache (a verify's run plan shares one):
    cells it holds are not computed again, whichever executor computed them, and the
    incremental engine's cells are stored there under the conditions' addresses."""
    lengths = {e.length for e in task.examples}
    if len(lengths) != 1:
        raise ValueError(f"a sweep needs prompts of one token length; got {sorted(lengths)}")
    if any(len(e.corrupt) != e.length for e in task.examples):
        raise ValueError("a sweep needs clean and corrupt prompts of one token length")
    if direction not in ("restore", "ablate"):
        raise ValueError(f"unknown direction '{direction}'; valid: restore, ablate")
    if method not in ("auto", "incremental", "hooks"):
        raise ValueError(f"unknown method '{method}'; valid: auto, incremental, hooks")
    if family not in FAMILIES:
        raise ValueError(f"unknown sweep family '{family}'; valid: {', '.join(FAMILIES)}")
    if family == "neurons" and not 0 <= layer < model.dims.n_layers:
        raise ValueError(
            f"layer {layer} is out of range; the model has layers 0-{model.dims.n_layers - 1}"
        )
    if family in ("resid_mid", "mlp_out", "neurons") and model.dims.attn_only:
        raise ValueError(f"'{family}' needs MLPs; this model is attention-only")
    length = lengths.pop()
    t0 = time.perf_counter()
    conds, index, shape = sweep_conditions(family, model, length, direction, layer)
    if method != "hooks":
        why = _incremental_unavailable(model, task, family)
        if why is None:
            if engine is not None and _saved(engine, task, conds, metric_name) is not None:
                method = "hooks"  # every cell is in the run cache: read it back
            else:
                s = _incremental(
                    model, task, family, direction, metric_name, layer, max_memory, progress
                )
                if engine is not None:
                    _store(engine, task, conds, metric_name, s)
                return s
        elif method == "incremental":
            raise ValueError(f"the incremental engine cannot run this sweep: {why}")
    if engine is None:
        engine = Engine(model, max_rows=max_rows, progress=progress)
    r = engine.run(task, conds, metric(metric_name))
    grid = r.values.mean(axis=1).reshape(shape)
    return PatchSweep(
        family,
        FAMILIES[family],
        grid,
        r.values,
        index,
        float(r.clean.mean()),
        float(r.corrupt.mean()),
        seconds=time.perf_counter() - t0,
        clean_values=r.clean,
        corrupt_values=r.corrupt,
    )


def _cells(engine: Engine, task: Task, conds: list[Condition], metric_name: str):
    """The run-cache scope, condition keys (the baselines' last) and example keys."""
    from causal_mi.engine.cache import bucket_keys, example_key

    ckpt = engine._cache(task, metric(metric_name))
    ex_keys = [example_key(e) for e in task.examples]
    keys = bucket_keys([*conds, Condition("clean"), Condition("corrupt")], ex_keys)
    return ckpt, keys, ex_keys


def _saved(engine: Engine, task: Task, conds: list[Condition], metric_name: str):
    """The cached values of every condition and both baselines, or None."""
    ckpt, keys, ex_keys = _cells(engine, task, conds, metric_name)
    if ckpt is None:
        return None
    hit = ckpt.lookup(keys, ex_keys, [()] * len(keys))
    return None if hit is None else hit[0]


def _store(engine: Engine, task: Task, conds: list[Condition], metric_name: str, s) -> None:
    """Save an incremental sweep's per-example values (and its baselines) as cells."""
    import torch

    ckpt, keys, ex_keys = _cells(engine, task, conds, metric_name)
    if ckpt is None:
        return
    values = np.concatenate([s.per_example, s.clean_values[None], s.corrupt_values[None]])
    ckpt.store(keys, ex_keys, torch.from_numpy(values.astype(np.float64)), [()] * len(keys), {})


def _incremental_unavailable(model: LoadedModel, task: Task, family: str) -> str | None:
    """Why the incremental engine cannot run this sweep, or None."""
    from causal_mi.engine.capabilities import capabilities
    from causal_mi.engine.joins import FAMILIES_FAST
    from causal_mi.models.weights import weights_for

    if family not in FAMILIES_FAST:
        return f"no incremental form of '{family}'"
    if task.not_plain():  # answer sets, a metric read at a role: hook passes read them
        return task.not_plain()
    why = capabilities(model).incremental
    if why:
        return why
    if family == "resid_mid" and weights_for(model).parallel:
        return "a parallel block has no resid_mid (attention and MLP both read resid_pre)"
    return None


def _incremental(
    model, task, family, direction, metric_name, layer, max_memory, progress
) -> PatchSweep:
    import torch

    from causal_mi.engine.incremental import incremental_model
    from causal_mi.engine.joins import run_sweep

    m = incremental_model(model)
    dev = m.device
    rows = torch.tensor([(*e.clean, *e.corrupt, e.answer, e.wrong) for e in task.examples])
    rows = rows.to(dev)
    P = (rows.shape[1] - 2) // 2
    clean, corrupt, answer, wrong = rows[:, :P], rows[:, P : 2 * P], rows[:, -2], rows[:, -1]
    base, src = (corrupt, clean) if direction == "restore" else (clean, corrupt)
    # with noise corruption the corrupt run is the clean prompt plus embedding noise
    noise = embedding_noise(task.examples, P, m.w.W_E)
    with torch.inference_mode():
        runs, r = run_sweep(
            m,
            family,
            base,
            src,
            answer,
            wrong,
            metric_name=metric_name,
            base_is_clean=direction == "ablate",
            layer=layer,
            max_memory=max_memory,
            progress=progress,
            noise=(noise, None) if direction == "restore" else (None, noise),
        )
    index = [x.coords for x in runs]  # the order of sweep_conditions (tests hold them equal)
    shape = tuple(max(c) + 1 for c in zip(*index, strict=True))
    return PatchSweep(
        family,
        FAMILIES[family],
        r.values.mean(axis=1).reshape(shape),
        r.values,
        index,
        float(r.clean.mean()),
        float(r.corrupt.mean()),
        flops=r.flops,
        seconds=r.seconds,
        clean_values=r.clean,
        corrupt_values=r.corrupt,
    )
