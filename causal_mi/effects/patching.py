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

from causal_mi.engine.executors import choose, executors
from causal_mi.engine.joins import sweep_conditions
from causal_mi.engine.runner import Engine, Progress
from causal_mi.models.loading import LoadedModel
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
    if engine is None:
        engine = Engine(model, max_rows=max_rows, progress=progress)
    hint = (family, direction, layer)
    among = executors(engine, max_memory=max_memory, progress=progress, family=hint)
    if method == "hooks":
        among = among[-1:]  # the hook executor
    elif method == "incremental":
        among = among[:1]
        why = among[0].unavailable(task, conds)
        if why:
            raise ValueError(f"the incremental engine cannot run this sweep: {why}")
    v = choose(task, conds, among).run(task, conds, metric_name)
    return PatchSweep(
        family,
        FAMILIES[family],
        v.values.mean(axis=1).reshape(shape),
        v.values,
        index,
        float(v.clean.mean()),
        float(v.corrupt.mean()),
        flops=v.flops,
        seconds=time.perf_counter() - t0,
        clean_values=v.clean,
        corrupt_values=v.corrupt,
    )
