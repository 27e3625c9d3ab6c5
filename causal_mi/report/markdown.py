"""``report.md``: verdicts and key numbers, short enough for a pull-request comment."""

from __future__ import annotations

from pathlib import Path

from causal_mi.engine.metrics import METRIC_HELP
from causal_mi.report import causal_model
from causal_mi.report.context import ReportContext
from causal_mi.report.wording import PROPERTY_RUNS_HELP


def _f(x: float) -> str:
    return "n/a" if x != x else f"{x:+.3f}"


def render(ctx: ReportContext) -> str:
    v, m = ctx.verdict, ctx.measurement
    hyp, spec = v.hypothesis, v.hypothesis.spec
    from causal_mi.report.statistics import (
        claim_flags,
        claims_count,
        estimate_cell,
        gap_line,
        interval_line,
        status_word,
    )

    status = status_word(v)
    lines = [
        f"# causal-mi: {spec.name} — {status} ({claims_count(v)})",
        "",
        spec.description or "",
        "",
        f"- hypothesis: `{hyp.path}`",
        f"- model: `{ctx.model_info.ref}` (sha256 `{ctx.model_info.weights_sha256[:12]}`)",
        f"- task: `{ctx.task.name}`, n = {len(ctx.task)}, seed = {spec.task.seed}",
        f"- metric: `{spec.metric}` ({METRIC_HELP[spec.metric]}), ablation: `{spec.ablation}`",
        f"- m(clean) = {m.clean.mean():.4f}, m(corrupt) = {m.corrupt.mean():.4f}",
        f"- {gap_line(m, v)}",
        "",
        "## Claims",
        "",
        "| claim | estimate [CI] | decision rule | verdict |",
        "|---|---|---|---|",
    ]
    for c in v.claims:
        word = {"holds": "holds", "fails": "**fails**"}.get(c.status, f"**{c.status}**")
        rule = c.rule if c.decidable and c.estimate.defined else c.why
        flag = claim_flags(c)
        lines.append(
            f"| `{c.claim.claim.text}` | {estimate_cell(c)} | {rule}"
            f"{'; ' + flag if flag else ''} | {word} |"
        )
    lines += [
        "",
        interval_line(m, v),
        "A claim `q >= t` holds only if its lower decision bound is >= t, `q <= t` only if "
        "its upper bound is <= t, `q ~= c +- d` only if both lie inside [c - d, c + d].",
    ]
    lines += ["", "## Circuit nodes", "", "| node | site | effect | restore |", "|---|---|---|---|"]
    for name, site in hyp.nodes.items():
        eff, res = m.estimate("effect", site), m.estimate("restore", site)
        cells = [f"{_f(x.point)} [{_f(x.lower)}, {_f(x.upper)}]" if x else "" for x in (eff, res)]
        lines.append(f"| {name} | `{site}` | {cells[0]} | {cells[1]} |")
    level = (
        "edge level, path patching" if "faithfulness[node level]" in m.estimates else ("node level")
    )
    names = {
        "faithfulness": f"faithfulness ({level})",
        "faithfulness[node level]": "faithfulness (node level)",
        "complement": "complement (circuit nodes ablated)",
    }
    for label, shown in names.items():
        if label in m.estimates:
            e = m.estimates[label]
            lines.append(f"\n{shown}: {_f(e.point)} [{_f(e.lower)}, {_f(e.upper)}]")
    if ctx.ablations:
        abls = list(next(iter(ctx.ablations.values())))
        lines += [
            "",
            "## Do the verdicts depend on the ablation?",
            "",
            "| claim | " + " | ".join(abls) + " |",
            "|---|" + "---|" * len(abls),
        ]
        for text, by in ctx.ablations.items():
            cells = [f"{'holds' if r['passed'] else 'fails'} {_f(r['point'])}" for r in by.values()]
            lines.append(f"| `{text}` | " + " | ".join(cells) + " |")
    lines += dowhy_lines(ctx)
    lines += causal_model.to_markdown(ctx)
    if ctx.properties:
        lines += ["", "## Properties", ""]
        lines += [f"- `{p.text}`: {p.status} — {p.detail}" for p in ctx.properties]
        lines += ["", PROPERTY_RUNS_HELP]
    notes = m.notes + ctx.notes
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    p = ctx.provenance
    lines += [
        "",
        "## Provenance",
        "",
        f"causal-mi {p['versions'].get('causal-mi')}, torch {p['versions'].get('torch')}, "
        f"transformer-lens {p['versions'].get('transformer-lens')}, python {p['python']}; "
        f"seed {p['seed']}; started {p['started']}, {p['seconds']} s.",
    ]
    return "\n".join(lines) + "\n"


def dowhy_lines(ctx: ReportContext) -> list[str]:
    """The DoWhy cross-check table; disagreements are flagged, verdicts unchanged."""
    from causal_mi.effects.crosscheck import NO_CLAIMS, TOLERANCE_RULE

    cc = ctx.dowhy
    if cc is None or (not cc.ran and cc.reason == NO_CLAIMS):
        return []
    if not cc.ran:
        return ["", f"DoWhy cross-check: not run ({cc.reason})."]
    lines = [
        "",
        "## DoWhy cross-check",
        "",
        "DoWhy re-estimates each mediation quantity from the interventional runs (linear "
        "models, graph T -> M -> Y, T -> Y; fractions of G). Tolerance: "
        f"{TOLERANCE_RULE}. A disagreement is flagged; it does not change a verdict or the "
        "exit code.",
        "",
        "| quantity | DoWhy | interventional | abs diff | tolerance | placebo | data subset "
        "| agrees |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cc.checks:
        lo, hi = c.interventional_ci
        refs = [
            f"{_f(r.new_effect)} (p {'n/a' if r.p_value is None else f'{r.p_value:.2f}'})"
            for r in c.refutations
        ]
        lines.append(
            f"| `{c.label}` ({c.estimand}) | {_f(c.dowhy)} | {_f(c.interventional)} "
            f"[{_f(lo)}, {_f(hi)}] | {c.difference:.3f} | {c.tolerance:.3f} | "
            + " | ".join(refs)
            + f" | {'yes' if c.agrees else '**no: flagged**'} |"
        )
    notes = [f"`{c.label}`: {c.note}" for c in cc.checks if c.note] + list(cc.notes)
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return lines


def write(ctx: ReportContext, path: Path) -> None:
    path.write_text(render(ctx))
