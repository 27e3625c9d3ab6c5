"""``causal-mi sweep``: activation-patching sweeps for the model and task of a hypothesis file.

The file is validated as for ``verify`` (errors with file:line:col, exit 2, nothing written);
families and options are checked before anything runs. A sweep needs prompts of one token
length: with several, the most common length is swept and the output says so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from causal_mi.errors import EXIT_OK, OptionError


def run_sweeps(
    file: Path,
    families: list[str],
    direction: str,
    layer: int,
    method: str,
    out: Path,
    device: str,
    precision: str,
    budget: int | None,
    bar,
    echo,
    err,
) -> int:
    from causal_mi import pipeline
    from causal_mi.effects.patching import FAMILIES, act_patch
    from causal_mi.report.sweep_files import write
    from causal_mi.tasks.base import Task

    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise OptionError(f"unknown sweep family '{bad[0]}'; valid: {', '.join(FAMILIES)}")
    if direction not in ("restore", "ablate"):
        raise OptionError(f"unknown direction '{direction}'; valid: restore, ablate")
    if method not in ("auto", "incremental", "hooks"):
        raise OptionError(f"unknown method '{method}'; valid: auto, incremental, hooks")
    prep = pipeline.prepare(file, device=device, precision=precision)
    model, task = prep.model, prep.task
    if "neurons" in families and not 0 <= layer < model.dims.n_layers:
        raise OptionError(
            f"--layer {layer} is out of range; this model has layers 0-{model.dims.n_layers - 1}"
        )
    for fam in families:  # everything checked before the first file is written
        if fam in ("resid_mid", "mlp_out", "neurons") and model.dims.attn_only:
            raise OptionError(f"{fam}: '{fam}' needs MLPs; this model is attention-only")
    lengths = Counter(e.length for e in task.examples)
    length, count = lengths.most_common(1)[0]
    if len(lengths) > 1:
        err(
            f"causal-mi: prompts have {len(lengths)} token lengths; sweeping the {count} "
            f"prompts of length {length} (a sweep's positions must line up)"
        )
        task = Task(task.name, tuple(e for e in task.examples if e.length == length))
    meta = {
        "hypothesis": str(file),
        "model": model.ref,
        "weights_sha256": model.weights_sha256,
        "task": task.name,
        "n": len(task.examples),
        "length": length,
        "metric": prep.hypothesis.spec.metric,
        "direction": direction,
        "device": device,
        "precision": precision,
    }
    for fam in families:
        kwargs = dict(
            direction=direction,
            metric_name=prep.hypothesis.spec.metric,
            layer=layer,
            method=method,
            max_memory=budget,
        )
        if budget is not None:
            from causal_mi.engine.budget import rows_for_model

            kwargs["max_rows"] = rows_for_model(model, length, budget)
        try:
            if bar is not None:
                with bar:
                    tid = bar.add_task(f"sweeping {fam}", total=None)
                    s = act_patch(
                        model,
                        task,
                        fam,
                        progress=lambda d, t, tid=tid: bar.update(tid, completed=d, total=t),
                        **kwargs,
                    )
            else:
                s = act_patch(model, task, fam, **kwargs)
        except ValueError as exc:  # e.g. an MLP family on an attention-only model
            raise OptionError(f"{fam}: {exc}") from None
        paths = write(s, out, meta={**meta, "engine": "incremental" if s.flops else "hooks"})
        g = s.clean - s.corrupt
        echo(
            f"{fam}: {len(s.index)} patches in {s.seconds:.2f} s; G = {g:+.3f}; "
            f"largest |fraction of G|: {strongest(s.table(), s.axes)}; "
            f"wrote {', '.join(str(p) for p in paths)}"
        )
    return EXIT_OK


def strongest(table, axes: tuple[str, ...], k: int = 3) -> str:
    """The ``k`` cells of a sweep table with the largest absolute fraction of G, signed, e.g.
    ``(layer=1, head=3) -0.76, (layer=0, head=1) +0.41``: a negative effect is as much a
    finding as a positive one."""
    top = table.reindex(table["fraction_of_G"].abs().sort_values(ascending=False).index).head(k)
    return ", ".join(
        "(" + ", ".join(f"{a}={int(r[a])}" for a in axes) + f") {r['fraction_of_G']:+.2f}"
        for _, r in top.iterrows()
    )
