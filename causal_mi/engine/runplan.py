"""One plan of every run a verify makes: declared by each stage, executed once, printable.

Every stage of a verify (the claims, the ablation check, the graph's node recordings and
mediation decomposition, the properties, the DoWhy cross-check) *declares* the conditions
it will read into one :class:`RunPlan` before anything runs. The plan deduplicates them by
content (:func:`~causal_mi.engine.address.condition_key`: labels are not identity), orders
them into phases (a condition that reads a recording runs after the condition that makes
it, found through the recording's content name), and executes each phase as one run of the
engine into the verify's run cache. The stages then compute their quantities, statistics
and verdicts from that table: every cell they ask for is already there, so none of them
runs a forward pass (tested). A plan is data: it prints (:meth:`RunPlan.describe`), hashes
(:meth:`RunPlan.digest`) and saves (:meth:`RunPlan.to_json`).

A request may name a subset of the task's examples (the report's views measure at most a
few hundred) and an act-patching *family* (``head_out``, ``resid_pre`` ...; see
:mod:`causal_mi.effects.patching`): such a request is run first, as one unit, by the
executor its family and the model's capabilities allow (the incremental engine, which
starts each patched run at its layer, or hook passes), into the same run cache under the
same condition addresses, so a later stage asking for one of its cells reads it.

A request may be *gated*: the DoWhy cross-check reads its runs only when the file's gap
gate is decidable, so its conditions form a second wave executed after the measurement
says so; a gated condition another stage also declared runs in the first wave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from causal_mi.engine.address import condition_key, digest
from causal_mi.engine.plan import Condition


@dataclass(frozen=True)
class Request:
    """What one stage declared: its conditions, whether it needs the first-order influence
    of a mean source (mean ablation's resampled mean), and whether it runs only when the gap
    gate is decidable."""

    stage: str
    conditions: tuple[Condition, ...]
    influence: bool = False
    gated: bool = False
    examples: tuple[int, ...] | None = None  # indices into the task (None: every example)
    family: str = ""  # an act-patching family the conditions form, with its direction
    direction: str = ""

    @property
    def separate(self) -> bool:
        """Run on its own, before the phases (a subset of examples, or a sweep family)."""
        return self.examples is not None or bool(self.family)


class RunPlan:
    """The declared runs of one verify (see the module docstring)."""

    def __init__(self) -> None:
        self._requests: list[Request] = []

    def declare(
        self,
        stage: str,
        conditions: Sequence[Condition],
        *,
        influence: bool = False,
        gated: bool = False,
        examples: Sequence[int] | None = None,
        family: str = "",
        direction: str = "",
    ) -> None:
        """``examples``: measure on these examples of the task only; ``family`` /
        ``direction``: the conditions are that act-patching sweep (in the order
        :func:`causal_mi.engine.joins.sweep_conditions` gives), which the incremental
        engine may run (see :meth:`execute`)."""
        if gated and (examples is not None or family):
            raise ValueError("a gated request runs on every example, as conditions")
        subset = None if examples is None else tuple(int(i) for i in examples)
        self._requests.append(
            Request(stage, tuple(conditions), influence, gated, subset, family, direction)
        )

    @property
    def requests(self) -> tuple[Request, ...]:
        return tuple(self._requests)

    def _unique(self, requests: Sequence[Request]) -> dict[str, Condition]:
        """Content key -> condition, the recordings of equal conditions merged."""
        out: dict[str, Condition] = {}
        for r in requests:
            for c in r.conditions:
                k = condition_key(c)
                if k in out:
                    record = tuple(dict.fromkeys(out[k].record + c.record))
                    out[k] = replace(out[k], record=record)
                else:
                    out[k] = c
        return out

    def conditions(self) -> dict[str, Condition]:
        """Every declared condition once, by content key."""
        return self._unique(self._requests)

    def phases(self, conditions: dict[str, Condition] | None = None) -> list[list[str]]:
        """Condition keys by phase: phase 0 reads no recording; a condition reading one runs
        in the phase after the one that records it. Raises ``ValueError`` on a recording no
        declared condition makes."""
        conds = self.conditions() if conditions is None else conditions
        producer = {name: k for k, c in conds.items() for name, _ in c.record}
        phase: dict[str, int] = {}

        def of(k: str, seen: tuple[str, ...] = ()) -> int:
            if k in phase:
                return phase[k]
            if k in seen:
                raise ValueError(f"condition {conds[k].label or k} reads its own recording")
            p = 0
            for patch in conds[k].patches:
                if patch.source == "recorded":
                    name = patch.recording
                    if name not in producer:
                        raise ValueError(
                            f"condition {conds[k].label or k} reads recording {name}, which "
                            "no declared condition makes"
                        )
                    p = max(p, of(producer[name], (*seen, k)) + 1)
            phase[k] = p
            return p

        out: list[list[str]] = []
        for k in conds:
            p = of(k)
            while len(out) <= p:
                out.append([])
            out[p].append(k)
        return out

    def cells(self, n_examples: int) -> int:
        """Distinct (condition, example) cells the plan measures on a task of that many
        examples (a request on a subset counts its examples only)."""
        every = range(n_examples)
        per: dict[str, set[int]] = {}
        for r in self._requests:
            rows = every if r.examples is None else r.examples
            for c in r.conditions:
                per.setdefault(condition_key(c), set()).update(rows)
        return sum(len(x) for x in per.values())

    def digest(self) -> str:
        """A hash of what the plan runs (its conditions' content, in no particular order,
        with what each stage needs): equal plans, equal digests."""
        stages = sorted(
            (
                r.stage,
                sorted(condition_key(c) for c in r.conditions),
                r.influence,
                r.gated,
                r.examples,
                r.family,
                r.direction,
            )
            for r in self._requests
        )
        return digest(stages)

    def summary(self) -> list[dict[str, Any]]:
        """Per stage: conditions declared, and how many no earlier stage declared."""
        seen: set[str] = set()
        rows = []
        for r in self._requests:
            keys = {condition_key(c) for c in r.conditions}
            row = {
                "stage": r.stage,
                "declared": len(keys),
                "new": len(keys - seen),
                "gated": r.gated,
                "influence": r.influence,
            }
            if r.separate:
                row["examples"] = "all" if r.examples is None else len(r.examples)
                row["family"] = f"{r.family} ({r.direction})" if r.family else ""
            rows.append(row)
            seen |= keys
        return rows

    def to_json(self) -> dict[str, Any]:
        """The plan as saved in results.json: its digest, the stages and the phases."""
        return {
            "digest": self.digest(),
            "conditions": len(self.conditions()),
            "phases": [len(p) for p in self.phases()],
            "stages": self.summary(),
        }

    def describe(self) -> str:
        """A table of the stages and what each adds to the runs."""
        lines = [f"run plan {self.digest()}: {len(self.conditions())} distinct conditions"]
        for row in self.summary():
            flags = [w for w in ("gated", "influence") if row[w]]
            if row.get("family"):
                flags.append(f"sweep {row['family']}")
            if "examples" in row:
                flags.append(f"{row['examples']} examples")
            extra = f" ({', '.join(flags)})" if flags else ""
            lines.append(
                f"  {row['stage']:32s} {row['declared']:5d} declared, {row['new']:5d} new{extra}"
            )
        phases = self.phases()
        lines.append(f"  phases: {' + '.join(str(len(p)) for p in phases)} conditions")
        return "\n".join(lines)

    def execute(
        self,
        engine: Any,
        task: Any,
        metric: Any,
        *,
        gated: bool = False,
        sweeps: Callable[[Request, Any, Any, Any], None] | None = None,
    ) -> int:
        """Run the first wave (``gated=False``: the separate requests, each as one unit,
        then every other ungated request's conditions) or the second (``gated=True``: the
        gated requests' conditions no ungated one declared), phase by phase, one engine run
        per phase and influence need, into ``engine``'s run cache. ``sweeps(request, task,
        engine, metric)`` runs a request naming a family (it chooses the executor); without it, or
        for a subset without a family, the engine runs the conditions on those examples.
        Returns the number of conditions run (a separate request's counted as declared)."""
        separate = 0
        if not gated:
            for r in self._requests:
                if not r.separate:
                    continue
                sub = (
                    task
                    if r.examples is None
                    else type(task)(task.name, tuple(task.examples[i] for i in r.examples))
                )
                if r.family and sweeps is not None:
                    sweeps(r, sub, engine, metric)
                else:
                    engine.run(sub, list(r.conditions), metric)
                separate += len(r.conditions)
        wave = [r for r in self._requests if r.gated == gated and not r.separate]
        conds = self._unique(wave)
        if gated:
            first = self._unique([r for r in self._requests if not r.gated and not r.separate])
            conds = {k: c for k, c in conds.items() if k not in first}
        if not conds:
            return separate
        wanted = {condition_key(c) for r in wave if r.influence for c in r.conditions}
        available = self._unique([r for r in self._requests if not r.separate])
        recorded: dict = {}
        for keys in self.phases(available):
            needed = [k for k in keys if k in conds]
            if gated:  # a gated condition may read a recording of the first wave
                needed += [k for k in keys if k not in conds and _records_for(k, conds, available)]
            if not needed:
                continue
            for infl in (True, False):
                part = [available[k] for k in needed if (k in wanted) == infl]
                if part:
                    r = engine.run(task, part, metric, recorded=recorded or None, influence=infl)
                    recorded = {**recorded, **r.recorded}
        return separate + len(conds)


def _records_for(k: str, conds: dict[str, Condition], available: dict[str, Condition]) -> bool:
    """Whether condition ``k`` (outside ``conds``) makes a recording one of ``conds`` reads."""
    names = {name for name, _ in available[k].record}
    return any(p.recording in names for c in conds.values() for p in c.patches if p.recording)
