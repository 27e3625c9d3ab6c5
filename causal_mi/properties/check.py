"""Checking properties with Z3 (SPEC 5) over observed and interventional data.

1. **Observed**: every example's clean and corrupt run; each variable is discretized from the
   recorded activation.
2. **Interventional truth tables**: for each property, its *parents* are the boolean
   component variables whose layer is below the property's deepest variable (outputs are
   deepest). Every combination of parent states is set by patching on the clean run:
   state 0 ablates the component the variable reads (its output; the file's ablation), state
   1 keeps its clean value; the other variables are measured in that run.

For each property Z3 searches the rows for one that falsifies it (``Not(property)`` and "the
variables equal one of the rows"); a model of that query is a counterexample, reported with
the example's prompt and the intervention. The whole set is also checked for consistency:
a set no assignment satisfies is reported with its unsat core, and a property that holds for
every assignment is noted as a tautology (true whatever the model does).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from causal_mi.properties import formula as F
from causal_mi.properties.result import PropertyResult
from causal_mi.properties.variables import Variable, discretize, raw_values

MAX_PARENTS = 4


@dataclass(frozen=True)
class Property:
    name: str
    text: str
    ast: F.Node
    variables: tuple[str, ...]
    allow_vacuous: bool = False  # the file accepts a premise that is never realised

    @property
    def premise(self) -> F.Node | None:
        """The antecedent of a top-level implication (what must be seen for it to mean
        anything), or None for other formulas."""
        return self.ast.args[0] if self.ast.op == "implies" else None


def parse_properties(
    raw, variables: list[Variable], broken: frozenset[str] = frozenset()
) -> tuple[list[Property], list]:
    """Properties from the file's ``properties:`` list (a formula, or ``{name, formula}``);
    returns (properties, problems) with problems as (index, key, column, message). A
    property naming a ``broken`` variable (already reported) is dropped without a second
    report."""
    types = {v.name: "bool" if v.boolean else "int" for v in variables}
    out, problems = [], []
    for i, item in enumerate(raw or []):
        key = None
        if isinstance(item, dict):
            unknown = set(item) - {"name", "formula", "allow_vacuous"}
            if (
                unknown
                or "formula" not in item
                or not isinstance(item.get("allow_vacuous", False), bool)
            ):
                problems.append(
                    (
                        i,
                        None,
                        1,
                        "a property is a formula string or a mapping with "
                        "'formula' (and optionally 'name' and 'allow_vacuous: true|false')",
                    )
                )
                continue
            name, text, key = str(item.get("name", item["formula"])), item["formula"], "formula"
            vacuous_ok = bool(item.get("allow_vacuous", False))
        else:
            name, text, vacuous_ok = str(item), item, False
        try:
            ast = F.parse(text)
            if set(F.names(ast)) & broken:
                continue
            if F.check_types(ast, types) != "bool":
                raise F.FormulaError("a property must be a boolean formula", 1)
        except F.FormulaError as exc:
            problems.append((i, key, exc.column, str(exc)))
            continue
        out.append(Property(name, str(text), ast, tuple(F.names(ast)), vacuous_ok))
    return out, problems


def _z3_env(variables: list[Variable]):
    import z3

    env, domain = {}, []
    for v in variables:
        if v.boolean:
            env[v.name] = z3.Bool(v.name)
        else:
            env[v.name] = z3.Int(v.name)
            domain.append(z3.And(env[v.name] >= 0, env[v.name] <= v.top))
    return env, domain


def _z3_value(v: Variable, state: int):
    import z3

    return z3.BoolVal(bool(state)) if v.boolean else z3.IntVal(int(state))


def consistency(props: list[Property], variables: list[Variable]) -> tuple[list[str], list[str]]:
    """(names in an unsat core of the whole set, or [] if satisfiable; tautologies)."""
    import z3

    env, domain = _z3_env(variables)
    s = z3.Solver()
    s.add(*domain)
    tags = {}
    for i, p in enumerate(props):
        t = z3.Bool(f"__property_{i}")
        tags[str(t)] = p.name
        s.add(z3.Implies(t, F.to_z3(p.ast, env)))
    core: list[str] = []
    if s.check(*[z3.Bool(k) for k in tags]) == z3.unsat:
        core = [tags[str(c)] for c in s.unsat_core()]
    tautologies = []
    for p in props:
        t = z3.Solver()
        t.add(*domain, z3.Not(F.to_z3(p.ast, env)))
        if t.check() == z3.unsat:
            tautologies.append(p.name)
    return core, tautologies


def falsifying_row(p: Property, variables: list[Variable], rows: np.ndarray) -> int | None:
    """Index of a row of ``rows`` [n, n_vars] (states in ``variables`` order) that falsifies
    ``p``, found by Z3, or None."""
    import z3

    if len(rows) == 0:
        return None
    env, domain = _z3_env(variables)
    used = [i for i, v in enumerate(variables) if v.name in p.variables]
    distinct, first = np.unique(rows[:, used], axis=0, return_index=True)
    s = z3.Solver()
    s.add(*domain, z3.Not(F.to_z3(p.ast, env)))
    s.add(
        z3.Or(
            *[
                z3.And(
                    *[
                        env[variables[j].name] == _z3_value(variables[j], r[k])
                        for k, j in enumerate(used)
                    ]
                )
                for r in distinct
            ]
        )
    )
    if s.check() != z3.sat:
        return None
    model = s.model()
    want = [
        int(z3.is_true(model.eval(env[variables[j].name], model_completion=True)))
        if variables[j].boolean
        else model.eval(env[variables[j].name], model_completion=True).as_long()
        for j in used
    ]
    for r, idx in zip(distinct, first, strict=True):
        if list(map(int, r)) == want:
            return int(idx)
    return None  # unreachable: the model is one of the rows


def parents_of(p: Property, variables: list[Variable]) -> list[Variable]:
    """Boolean component variables of ``p`` below its deepest variable (at most 4, formula
    order), each reading a different component (see :func:`not_intervened` for the rest)."""
    vs = [v for v in variables if v.name in p.variables]
    deepest = max(v.layer for v in vs)
    out, seen = [], set()
    for name in p.variables:
        v = next(x for x in vs if x.name == name)
        if v.site is not None and v.boolean and v.layer < deepest and v.site not in seen:
            out.append(v)
            seen.add(v.site)
    return out[:MAX_PARENTS]


def not_intervened(p: Property, variables: list[Variable], parents: list[Variable]) -> list[str]:
    """Component variables below the deepest one that are not set by intervention: integer
    variables, a second variable on the same component, and parents beyond the fourth."""
    vs = [v for v in variables if v.name in p.variables]
    deepest = max(v.layer for v in vs)
    chosen = {v.name for v in parents}
    return [v.name for v in vs if v.site is not None and v.layer < deepest and v.name not in chosen]


def _ablation_site(v: Variable):
    from causal_mi.spec.sites import Kind, Site

    if v.kind == "attention":
        return Site(Kind.HEAD, v.site.layer, v.site.head)
    return v.site


def _conditions(props: list[Property], variables: list[Variable], ablation: str):
    """The runs the properties read: the clean and corrupt inputs (observed data) and, per
    property, the clean input under each combination of its parents switched off; with the
    observed keys, each property's (parents, [(combination, key)]) and the hooks read."""
    from causal_mi.engine.plan import ABLATION_SOURCE, Condition, site_patches

    # what the variables read; ``output: metric`` reads the engine's metric values, not logits
    hooks = sorted({v.hook for v in variables if not (v.kind == "output" and v.target == "metric")})
    source = ABLATION_SOURCE[ablation]
    conds: dict[tuple, Condition] = {}

    def cond(base: str, off: tuple) -> tuple:
        key = (base, off)
        if key not in conds:
            patches = site_patches([_ablation_site(v) for v in off], source)
            label = f"{base}|" + ",".join(v.name for v in off)
            conds[key] = Condition(
                base, patches, tuple((f"{label}|{h}", h) for h in hooks), label=label
            )
        return key

    obs = [cond("clean", ()), cond("corrupt", ())]
    plans = {}
    for p in props:
        parents = parents_of(p, variables)
        combos = list(itertools.product((0, 1), repeat=len(parents)))
        plans[p.name] = (
            parents,
            [
                (c, cond("clean", tuple(v for v, s in zip(parents, c, strict=True) if s == 0)))
                for c in combos
            ],
        )
    return conds, obs, plans, hooks


def declare_runs(props: list[Property], variables: list[Variable], ablation: str, runs) -> None:
    """Declare what :func:`check_properties` reads."""
    if props:
        runs.declare("properties", list(_conditions(props, variables, ablation)[0].values()))


def check_properties(
    props: list[Property],
    variables: list[Variable],
    model,
    task,
    *,
    ablation: str,
    metric_name: str,
    max_rows: int = 256,
    progress=None,
    cache=None,
) -> list[PropertyResult]:
    """One result per property: status ``holds`` | ``fails`` | ``vacuous`` (``fails`` with
    ``contradictory`` set when it contradicts the others), a detail line, the
    counterexample (if any), and the interventional truth table."""
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.runner import Engine

    conds, obs, plans, hooks = _conditions(props, variables, ablation)
    keys = list(conds)
    r = Engine(model, max_rows=max_rows, progress=progress, cache=cache).run(
        task, [conds[k] for k in keys], metric(metric_name)
    )
    states = {k: _states(conds[k], r, keys.index(k), variables, task, hooks) for k in keys}
    core, tautologies = consistency(props, variables)
    results = []
    for p in props:
        parents, combos = plans[p.name]
        base = dict(
            name=p.name,
            text=p.text,
            variables=tuple(p.variables),
            parents=tuple(v.name for v in parents),
        )
        if p.name in core:
            detail = (
                f"contradicts the other properties (unsat core: {', '.join(core)}); no model "
                "can satisfy them all"
            )
            results.append(
                PropertyResult(**base, status="fails", detail=detail, contradictory=True)
            )
            continue
        everyone = np.ones(len(task.examples), dtype=bool)
        bad = _search(
            p, variables, [(k, {}, everyone) for k in obs], states, task, "observed", model
        )
        realised = {c: _realised(parents, c, states[obs[0]], variables) for c, _ in combos}
        if bad is None:
            rows = [
                (k, {v.name: s for v, s in zip(parents, c, strict=True)}, realised[c])
                for c, k in combos
            ]
            bad = _search(p, variables, rows, states, task, "interventional", model)
        n_obs = 2 * len(task.examples)
        n_int = sum(int(realised[c].sum()) for c, _ in combos)
        skipped = not_intervened(p, variables, parents)
        cov = _coverage(p, variables, parents, combos, states, obs, realised)
        seen = dict(
            truth_table=_table(p, parents, combos, states, variables, realised),
            not_intervened=tuple(skipped),
            coverage=cov,
        )
        vacuous = _vacuity(p, cov)
        if bad is None and vacuous and not p.allow_vacuous:
            status, detail = "vacuous", vacuous
        elif bad is None:
            note = " (a tautology: true whatever the model does)" if p.name in tautologies else ""
            if skipped:
                note += f"; measured, not set by intervention: {', '.join(skipped)}"
            if vacuous:
                note += f"; vacuously (allowed by the file): {vacuous}"
            status = "holds"
            detail = (
                f"holds on {n_obs} observed runs (the clean and corrupt run of each "
                f"example) and {n_int} interventional runs (clean runs with its "
                f"{len(parents)} parent variable(s) set by ablate-or-keep, counted where the "
                f"setting is realised){note}"
            )
        else:
            status, detail = "fails", bad["summary"]
        results.append(
            PropertyResult(**base, **seen, status=status, detail=detail, counterexample=bad or None)
        )
    return results


def _coverage(p, variables, parents, combos, states, obs, realised) -> dict:
    """How much of what ``p`` speaks about was seen: on how many observed and interventional
    runs its premise is true, and which parent combinations were realised (n > 0)."""
    names = [v.name for v in variables]
    premise = p.premise
    out: dict = {
        "observed_runs": int(sum(len(states[k]) for k in obs)),
        "combinations": len(combos),
        "combinations_realised": sum(bool(realised[c].any()) for c, _ in combos),
        "unrealised": [
            {v.name: s for v, s in zip(parents, c, strict=True)}
            for c, _ in combos
            if not realised[c].any()
        ],
    }
    if premise is None:
        return out
    true_of = Property("premise", "", premise, tuple(F.names(premise)))
    negated = Property("not premise", "", F.Node("not", (premise,)), true_of.variables)

    def count(rows: np.ndarray) -> int:
        n, left = 0, rows
        while len(left):  # rows where the premise holds are those falsifying its negation
            j = falsifying_row(negated, variables, left)
            if j is None:
                break
            hit = np.all(
                left[:, [names.index(x) for x in true_of.variables]]
                == left[j][[names.index(x) for x in true_of.variables]],
                axis=1,
            )
            n += int(hit.sum())
            left = left[~hit]
        return n

    out["premise_observed"] = sum(count(states[k]) for k in obs)
    inter = 0
    for c, k in combos:
        rows = states[k][realised[c]].copy()
        for v, s in zip(parents, c, strict=True):
            rows[:, names.index(v.name)] = s
        inter += count(rows)
    out["premise_interventional"] = inter
    return out


def _vacuity(p, cov: dict) -> str:
    """Why ``p`` would hold only vacuously (empty when it does not)."""
    why = []
    if p.premise is not None and cov["premise_observed"] + cov["premise_interventional"] == 0:
        why.append(
            f"its premise is true in none of the {cov['observed_runs']} observed runs and none "
            "of the interventional runs"
        )
    if cov["unrealised"]:
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in u.items()) for u in cov["unrealised"])
        why.append(
            f"{len(cov['unrealised'])} of {cov['combinations']} parent combinations were "
            f"never realised ({shown}: keeping a parent at 1 needs examples where it is 1 on "
            "the clean run)"
        )
    if not why:
        return ""
    return (
        "vacuous: " + " and ".join(why) + "; nothing was tested there (write "
        "'allow_vacuous: true' in the property to accept this)"
    )


def _states(cond, r, ci: int, variables, task, hooks) -> np.ndarray:
    """[n_examples, n_vars] discretized states of every variable in condition ``ci``."""
    n = len(task.examples)
    out = np.zeros((n, len(variables)), dtype=int)
    from causal_mi.engine.rows import run_key, run_tokens

    keys = [run_key(e) for e in task.examples]  # the engine's buckets (recording keys)
    for length in sorted(set(keys), key=str):
        idx = [i for i, k in enumerate(keys) if k == length]
        toks = torch.tensor([run_tokens(task.examples[i], cond.base) for i in idx])
        answer = torch.tensor([task.examples[i].answer for i in idx])
        for j, v in enumerate(variables):
            rec = r.recorded.get(f"{cond.label}|{v.hook}", {}).get(length)
            vals = raw_values(
                v,
                rec,
                toks,
                answer.to(rec.device) if rec is not None else answer,
                r.values[ci][idx],
                roles=_roles(task, idx, cond.base),
            )
            out[idx, j] = discretize(v, vals)
    return out


def _roles(task, idx: list[int], base: str) -> dict[str, list[int]]:
    """Each role's (last) position in the ``base`` prompts of examples ``idx``."""
    exs = [task.examples[i] for i in idx]
    common = set.intersection(*(set(e.roles_of(base)) for e in exs))
    return {r: [e.roles_of(base)[r][-1] for e in exs] for r in common}


def _realised(parents, combo, clean_states: np.ndarray, variables) -> np.ndarray:
    """Examples on which a combination of parent states can be set: state 0 ablates the
    component (always possible), state 1 keeps its clean value, which is state 1 only where
    the variable is 1 on the clean run."""
    names = [v.name for v in variables]
    ok = np.ones(len(clean_states), dtype=bool)
    for v, s in zip(parents, combo, strict=True):
        if s == 1:
            ok &= clean_states[:, names.index(v.name)] == 1
    return ok


def _search(p, variables, runs, states, task, kind: str, model) -> dict | None:
    """The first run (a condition key, the parent states it sets, and the examples on which
    those states are realised) with a row that falsifies ``p``, as a counterexample dict."""
    names = [v.name for v in variables]
    for key, setting, where in runs:
        rows = states[key].copy()
        for name, s in setting.items():
            rows[:, names.index(name)] = s
        idx = np.flatnonzero(where)
        j = falsifying_row(p, variables, rows[idx])
        if j is None:
            continue
        i = int(idx[j])
        base, off = key
        ex = task.examples[i]
        values = {n: int(rows[i, names.index(n)]) for n in p.variables}
        if kind == "observed":
            how = f"the {base} run"
        else:
            parts = [f"{n}={s} ({'ablated' if s == 0 else 'clean'})" for n, s in setting.items()]
            how = "the clean run with " + (", ".join(parts) if parts else "no intervention")
        shown = ", ".join(f"{n}={v}" for n, v in values.items())
        return {
            "kind": kind,
            "example": i,
            "run": base,
            "intervention": setting,
            "source": ex.source,
            "prompt": " ".join(model.tokens.show(list(getattr(ex, base)))),
            "values": values,
            "summary": f"fails on example {i} ({ex.source}; {how}): {shown}",
        }
    return None


def _table(p, parents, combos, states, variables, realised) -> list[dict]:
    """Per parent combination: on how many examples it is realised (``n``) and the mean state
    of each other variable there (the share of examples where a boolean is on)."""
    names = [v.name for v in variables]
    others = [n for n in p.variables if n not in {v.name for v in parents}]
    out = []
    for c, key in combos:
        rows = states[key][realised[c]]
        row: dict = {v.name: s for v, s in zip(parents, c, strict=True)}
        row["n"] = len(rows)
        for n in others:
            row[n] = float(rows[:, names.index(n)].mean()) if len(rows) else None
        out.append(row)
    return out
