"""One interface to the engine's three executors: ``run(task, conditions, metric_name)``
returns the metric of every condition on every example, whichever executor computes it.

- :class:`HookExecutor`: hook passes through the bridge; every loaded model, node level.
- :class:`PathExecutor`: the engine's own forward pass (path patching, edge conditions).
- :class:`IncrementalExecutor`: the incremental engine, for conditions that are (part of)
  one act-patching sweep family (every head, every layer x position ... patched from the
  paired run; :func:`causal_mi.engine.joins.sweep_conditions`): each patched run starts at
  its layer and first changed position.

Each says up front whether it can run a set of conditions on a task (``unavailable``: None,
or one sentence naming what is missing, such as the architecture feature the model's
capabilities lack, :mod:`causal_mi.engine.capabilities`), and :func:`choose` takes the first
that can; nothing is chosen by catching a failure. All three read and extend the same run
cache, under the same condition addresses, so a cell one of them computed is read back by
the others (the hook and path executors share the batching, chunking and noise of
:class:`~causal_mi.engine.runner.Engine`; the incremental engine's cells are stored there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from causal_mi.engine.address import condition_key
from causal_mi.engine.cache import bucket_keys, example_key
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition


@dataclass(frozen=True)
class Values:
    """``values[i, j]``: the metric of condition i on example j; the unpatched runs'
    metric per example; who computed them; the arithmetic the incremental engine did."""

    values: np.ndarray
    clean: np.ndarray
    corrupt: np.ndarray
    executor: str
    flops: int = 0


class Executor(Protocol):
    name: str

    def unavailable(self, task: Any, conditions: Sequence[Condition]) -> str | None:
        """None when this executor runs ``conditions`` on ``task``, else why not."""

    def run(self, task: Any, conditions: Sequence[Condition], metric_name: str) -> Values:
        """The metric of every condition on every example of ``task``."""


class _EngineExecutor:
    name = ""

    def __init__(self, engine: Any):
        self.engine = engine

    def run(self, task: Any, conditions: Sequence[Condition], metric_name: str) -> Values:
        r = self.engine.run(task, list(conditions), metric(metric_name))
        return Values(r.values, r.clean, r.corrupt, self.name)


class HookExecutor(_EngineExecutor):
    name = "hook passes"

    def unavailable(self, task: Any, conditions: Sequence[Condition]) -> str | None:
        if any(c.edges is not None for c in conditions):
            return "edge conditions (path patching) run on the engine's own forward pass"
        return None


class PathExecutor(_EngineExecutor):
    name = "path patching"

    def unavailable(self, task: Any, conditions: Sequence[Condition]) -> str | None:
        from causal_mi.engine.capabilities import capabilities

        if any(c.edges is None for c in conditions):
            return "node conditions (no edge plan) run as hook passes"
        return capabilities(self.engine.model).path or task.not_plain()


class IncrementalExecutor:
    name = "incremental engine"

    def __init__(
        self,
        engine: Any,
        *,
        max_memory: int | None = None,
        progress=None,
        family: tuple[str, str, int] | None = None,
    ):
        """``family``: ``(family, direction, layer)`` the conditions are expected to be (a
        caller that built them says so; only that family is then checked)."""
        self.engine = engine
        self.max_memory, self.progress = max_memory, progress
        self.hint = family

    def family_of(self, task: Any, conditions: Sequence[Condition]):
        """``(family, direction, layer, rows)``: the sweep family whose conditions these
        are (``rows``: their positions in it), or None."""
        from causal_mi.engine.joins import FAMILIES_FAST, sweep_conditions

        model = self.engine.model
        length = task.examples[0].length
        wanted = [condition_key(c) for c in conditions]
        layers = range(model.dims.n_layers) if not model.dims.attn_only else ()
        candidates = [
            (family, direction, layer)
            for family in FAMILIES_FAST
            for direction in ("ablate", "restore")
            for layer in (layers if family == "neurons" else (0,))
        ]
        if self.hint is not None:
            candidates = [self.hint]
        for family, direction, layer in candidates:
            try:
                conds = sweep_conditions(family, model, length, direction, layer)[0]
            except ValueError:  # a family this model lacks (MLPs)
                continue
            at = {condition_key(c): i for i, c in enumerate(conds)}
            if all(k in at for k in wanted):
                return family, direction, layer, [at[k] for k in wanted]
        return None

    def unavailable(self, task: Any, conditions: Sequence[Condition]) -> str | None:
        return self._check(task, conditions)[0]

    def _check(self, task: Any, conditions: Sequence[Condition]):
        """(why not or None, the family found by :meth:`family_of`)."""
        from causal_mi.engine.capabilities import capabilities
        from causal_mi.models.weights import weights_for

        why = capabilities(self.engine.model).incremental
        if why:
            return why, None
        if len(task) == 0:
            return "the task has no examples", None
        if task.not_plain():  # answer sets, a metric read at a role: hook passes read them
            return task.not_plain(), None
        if len({e.length for e in task.examples}) != 1:
            return "the incremental engine runs prompts of one token length at a time", None
        found = self.family_of(task, conditions)
        if found is None:
            why = (
                "these conditions are not one act-patching sweep family's (a patch of each "
                "head, position or neuron from the paired run)"
            )
            return why, None
        if found[0] == "resid_mid" and weights_for(self.engine.model).parallel:
            why = "a parallel block has no resid_mid (attention and MLP both read resid_pre)"
            return why, None
        return None, found

    def run(self, task: Any, conditions: Sequence[Condition], metric_name: str) -> Values:
        """Every cell from the run cache when it holds them all; else the family's sweep,
        its cells (and the unpatched runs') stored in the cache."""
        import torch

        from causal_mi.engine.joins import sweep_conditions, sweep_values

        why, found = self._check(task, conditions)
        if why:
            raise ValueError(f"the incremental engine cannot run these conditions: {why}")
        family, direction, layer, rows = found
        ckpt = self.engine._cache(task, metric(metric_name))
        ex_keys = [example_key(e) for e in task.examples]
        every = [*conditions, Condition("clean"), Condition("corrupt")]
        keys = bucket_keys(every, ex_keys)
        hit = ckpt.lookup(keys, ex_keys, [()] * len(keys)) if ckpt is not None else None
        if hit is not None:
            v = hit[0].numpy()
            return Values(v[:-2], v[-2], v[-1], "run cache")
        _, r = sweep_values(
            self.engine.model,
            task,
            family,
            direction,
            metric_name,
            layer=layer,
            max_memory=self.max_memory,
            progress=self.progress,
        )
        if ckpt is not None:  # every cell of the family, not only those asked for
            conds = sweep_conditions(family, self.engine.model, task.examples[0].length,
                                     direction, layer)[0]  # fmt: skip
            all_keys = bucket_keys([*conds, Condition("clean"), Condition("corrupt")], ex_keys)
            table = np.concatenate([r.values, r.clean[None], r.corrupt[None]])
            ckpt.store(all_keys, ex_keys, torch.from_numpy(table.astype(np.float64)),
                       [()] * len(all_keys), {})  # fmt: skip
        return Values(r.values[rows], r.clean, r.corrupt, self.name, r.flops)


def executors(engine: Any, **incremental: Any) -> tuple[Executor, ...]:
    """The executors of ``engine``'s model, fastest first (incremental, path, hooks);
    ``incremental``: :class:`IncrementalExecutor`'s options."""
    return (IncrementalExecutor(engine, **incremental), PathExecutor(engine), HookExecutor(engine))


def choose(task: Any, conditions: Sequence[Condition], among: Sequence[Executor]) -> Executor:
    """The first of ``among`` that runs ``conditions`` on ``task``; raises ``ValueError``
    naming why each cannot."""
    reasons = []
    for ex in among:
        why = ex.unavailable(task, conditions)
        if why is None:
            return ex
        reasons.append(f"{ex.name}: {why}")
    raise ValueError("no executor runs these conditions (" + "; ".join(reasons) + ")")
