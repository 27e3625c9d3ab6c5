"""``report.html``: one self-contained page (inline CSS and SVG, no scripts or external
assets) with verdicts, CIs on every number, heatmaps, attention patterns, the hypothesis
graph with measured effects, and provenance."""

from __future__ import annotations

from html import escape
from pathlib import Path

from causal_mi.report import svg
from causal_mi.report.context import ReportContext
from causal_mi.spec.sites import Kind, format_site

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;font-size:14px}th{background:#f4f4f4}.pass{color:#0a0;font-weight:bold}
.fail{color:#c00;font-weight:bold}code{background:#f6f6f6;padding:1px 3px}
.figs{display:flex;flex-wrap:wrap;gap:24px}.note{color:#555;font-size:13px}
tr.flag td{background:#fde2e2}
"""


def _word(passed: bool) -> tuple[str, str]:
    return ("holds", "pass") if passed else ("fails", "fail")


def _ci(e) -> str:
    return f"{e.point:+.3f} <span class=note>[{e.lower:+.3f}, {e.upper:+.3f}]</span>"


def render(ctx: ReportContext) -> str:
    v, m = ctx.verdict, ctx.measurement
    hyp, spec = v.hypothesis, v.hypothesis.spec
    from causal_mi.report.statistics import (
        claims_count,
        estimate_cell,
        gap_line,
        interval_line,
        status_word,
    )

    status = status_word(v)
    h = [
        f"<!doctype html><html><head><meta charset=utf-8><title>causal-mi: "
        f"{escape(spec.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(spec.name)} — <span class={status.lower().replace(' ', '-')}>{status}</span> "
        f"({escape(claims_count(v))})</h1>",
        f"<p>{escape(spec.description)}</p>",
        f"<p>Model <code>{escape(ctx.model_info['ref'])}</code>, task "
        f"<code>{escape(ctx.task.name)}</code> (n = {len(ctx.task)}, seed {spec.task.seed}), "
        f"metric <code>{spec.metric}</code>, ablation <code>{spec.ablation}</code>. "
        f"m(clean) = {m.clean.mean():.4f}, m(corrupt) = {m.corrupt.mean():.4f}.</p>",
        f"<p class={'pass' if v.valid else 'fail'}>{escape(gap_line(m, v))}.</p>",
        "<h2>Claims</h2><table><tr><th>claim</th><th>estimate [CI]</th>"
        "<th>decision rule</th><th>verdict</th></tr>",
    ]
    for c in v.claims:
        cls = "pass" if c.passed else "fail"
        h.append(
            f"<tr><td><code>{escape(c.claim.claim.text)}</code></td>"
            f"<td>{escape(estimate_cell(c))}</td><td>{escape(c.why or c.rule)}</td>"
            f"<td class={cls}>{escape(c.status)}</td></tr>"
        )
    h.append("</table>")
    h.append(f"<p class=note>{escape(interval_line(m, v))}</p>")
    h.append("<h2>Hypothesis graph</h2>" + _graph(ctx))
    h.append("<h2>Measured quantities</h2><table><tr><th>quantity</th><th>estimate [CI]</th></tr>")
    for label, e in sorted(m.estimates.items()):
        h.append(f"<tr><td><code>{escape(label)}</code></td><td>{_ci(e)}</td></tr>")
    h.append("</table>")
    if ctx.ablations:
        abls = list(next(iter(ctx.ablations.values())))
        h.append(
            "<h2>Do the verdicts depend on the ablation?</h2><table><tr><th>claim</th>"
            + "".join(f"<th>{escape(a)}</th>" for a in abls)
            + "</tr>"
        )
        for text, by in ctx.ablations.items():
            h.append(
                f"<tr><td><code>{escape(text)}</code></td>"
                + "".join(
                    f"<td class={_word(r['passed'])[1]}>{_word(r['passed'])[0]}"
                    f" {r['point']:+.3f}</td>"
                    for r in by.values()
                )
                + "</tr>"
            )
        h.append("</table>")
    h.append(_dowhy(ctx))
    if ctx.views is not None:
        h.append(_views(ctx))
    if ctx.properties:
        h.append(
            "<h2>Properties</h2><ul>"
            + "".join(
                f"<li><code>{escape(p['text'])}</code>: {escape(p['status'])} — "
                f"{escape(p['detail'])}</li>"
                for p in ctx.properties
            )
            + "</ul>"
        )
    notes = m.notes + ctx.notes
    if notes:
        h.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    p = ctx.provenance
    h.append(
        "<h2>Provenance</h2><table>"
        + "".join(
            f"<tr><td>{escape(str(k))}</td><td>{escape(str(val))}</td></tr>"
            for k, val in [
                ("hypothesis", hyp.path),
                ("model", ctx.model_info["source"]),
                ("weights sha256", ctx.model_info["weights_sha256"]),
                ("seed", p["seed"]),
                ("started", p["started"]),
                ("seconds", p["seconds"]),
                ("python", p["python"]),
                *p["versions"].items(),
            ]
        )
        + "</table></body></html>"
    )
    return "\n".join(h)


def _dowhy(ctx: ReportContext) -> str:
    """The DoWhy cross-check table; rows beyond tolerance are highlighted."""
    from causal_mi.effects.crosscheck import MEDIATOR_SUMMARY, NO_CLAIMS, TOLERANCE_RULE

    cc = ctx.dowhy
    if cc is None or (not cc.ran and cc.reason == NO_CLAIMS):
        return ""
    if not cc.ran:
        return f"<p class=note>DoWhy cross-check: not run ({escape(cc.reason)}).</p>"
    h = [
        "<h2>DoWhy cross-check</h2><p class=note>DoWhy re-estimates each mediation "
        "quantity from the interventional runs: two rows per example, T = the sender "
        f"ablated (1) or not (0), Y = the metric, {escape(MEDIATOR_SUMMARY)}; graph "
        "T &rarr; M &rarr; Y, T &rarr; Y; linear models. Fractions of G. Tolerance: "
        f"{escape(TOLERANCE_RULE)}. Highlighted rows disagree; a disagreement does not "
        "change a verdict or the exit code.</p>",
        "<table><tr><th>quantity</th><th>estimand</th><th>DoWhy</th>"
        "<th>interventional [CI]</th><th>abs diff</th><th>tolerance</th>"
        "<th>placebo treatment</th><th>data subset</th><th>agrees</th></tr>",
    ]
    for c in cc.checks:
        lo, hi = c.interventional_ci
        refs = "".join(
            f"<td>{r.new_effect:+.3f} <span class=note>(p "
            f"{'n/a' if r.p_value is None else f'{r.p_value:.2f}'})</span></td>"
            for r in c.refutations
        )
        flag = "" if c.agrees else " class=flag"
        word = "<span class=pass>yes</span>" if c.agrees else "<span class=fail>no</span>"
        h.append(
            f"<tr{flag}><td><code>{escape(c.label)}</code></td><td>{c.estimand}</td>"
            f"<td>{c.dowhy:+.3f}</td><td>{c.interventional:+.3f} <span class=note>"
            f"[{lo:+.3f}, {hi:+.3f}]</span></td><td>{c.difference:.3f}</td>"
            f"<td>{c.tolerance:.3f}</td>{refs}<td>{word}</td></tr>"
        )
    h.append("</table>")
    notes = [f"{c.label}: {c.note}" for c in cc.checks if c.note] + list(cc.notes)
    if notes:
        h.append("<ul class=note>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return "".join(h)


def _graph(ctx: ReportContext) -> str:
    v, m = ctx.verdict, ctx.measurement
    hyp = v.hypothesis
    n_layers = ctx.model_info["n_layers"]
    nodes = [("embed", "embed", -1, None), ("logits", "logits", n_layers, None)]
    ids = {}
    for name, site in hyp.nodes.items():
        e = m.estimates.get(f"effect({format_site(site)})")
        label = f"{name} {format_site(site)}" + (f" {e.point:+.2f}" if e else "")
        nodes.append((name, label, site.layer, e.point if e else None))
        ids[site.component().without_pos()] = name
    edges = []
    for e in hyp.edges:
        a = "embed" if e.sender.kind is Kind.EMBED else ids.get(e.sender.component())
        b = "logits" if e.receiver.kind is Kind.LOGITS else ids.get(e.receiver.component())
        if a is None or b is None:
            continue
        est = m.estimates.get(f"edge({format_site(e.sender)} -> {format_site(e.receiver)})")
        channel = f".{e.receiver.channel}" if e.receiver.kind is Kind.HEAD_INPUT else ""
        edges.append((a, b, f"{channel} {est.point:+.2f}" if est else channel))
    note = (
        "<p class=note>Node labels: effect of ablating the node. Edge labels: effect of "
        "ablating only that edge (path patching), when edges are declared.</p>"
    )
    return svg.graph(nodes, edges, n_layers=n_layers) + note


def _views(ctx: ReportContext) -> str:
    vw = ctx.views
    n_layers, n_heads = vw.head_effect.shape
    figs = [
        svg.heatmap(
            vw.head_effect,
            [f"L{i}" for i in range(n_layers)],
            [f"H{j}" for j in range(n_heads)],
            title=f"effect of each head (n = {vw.head_examples})",
        ),
        svg.heatmap(
            vw.resid_restore,
            [f"L{i}" for i in range(n_layers)],
            [f"{i}:{t}" for i, t in enumerate(vw.resid_tokens)],
            title=f"restore(resid_pre) by layer x position (n = {vw.resid_examples})",
            cell=22,
        ),
    ]
    for name, pat in vw.patterns.items():
        figs.append(
            svg.heatmap(
                pat,
                vw.pattern_tokens,
                vw.pattern_tokens,
                cell=16,
                title=f"attention of {name}, example 1",
                vmax=1.0,
                fmt="{:.2f}",
            )
        )
    return (
        "<h2>Heatmaps and attention</h2><div class=figs>"
        + "".join(f"<div>{f}</div>" for f in figs)
        + "</div>"
    )


def write(ctx: ReportContext, path: Path) -> None:
    path.write_text(render(ctx), encoding="utf-8")
