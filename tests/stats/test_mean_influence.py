"""Mean ablation's mean is resampled with the examples (engine.influence), checked against a
brute-force bootstrap that recomputes the mean on every replicate and re-runs the model
under it with a hand-written hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.stats.bootstrap import resample_indices
from causal_mi.tasks.base import Example, Task

B = 60
N = 40


def _constant_clean_task(model) -> Task:
    """Every clean prompt the same, corrupt prompts drawn at random: a mean-ablated clean
    run is then the same on every example, so all the numerator's sampling variation comes
    from the mean (holding it fixed gives a zero-width interval)."""
    rng = np.random.default_rng(5)
    bos = model.tokens.bos_id
    vocab = list(range(3, 43))  # the fixture's word tokens
    clean = (bos, *rng.choice(vocab, 8).tolist())
    exs = [
        Example(clean, (bos, *rng.choice(vocab, 8).tolist()), vocab[0], vocab[1], f"row {i}")
        for i in range(N)
    ]
    return Task("constant-clean", tuple(exs))


def _brute_force(model, task, hook: str, pos: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(the mean-ablated metric per example, replicates of its task mean with the mean
    recomputed from each replicate's corrupt examples), by hand on the bridge."""
    bridge = model.bridge
    clean = torch.tensor([ex.clean for ex in task.examples])
    corrupt = torch.tensor([ex.corrupt for ex in task.examples])
    ans = torch.tensor([[ex.answer] for ex in task.examples])
    wrong = torch.tensor([[ex.wrong] for ex in task.examples])
    got: dict[str, torch.Tensor] = {}
    with torch.no_grad(), bridge.hooks(fwd_hooks=[(hook, lambda a, hook: got.setdefault("a", a))]):
        bridge(corrupt)
    a = got["a"].clone()  # [n, pos, d_model]
    sel = slice(None) if pos is None else pos

    def ablated(mu: torch.Tensor) -> torch.Tensor:
        def fn(act, hook):
            act = act.clone()
            act[:, sel] = mu[sel]
            return act

        with torch.no_grad(), bridge.hooks(fwd_hooks=[(hook, fn)]):
            last = bridge(clean)[:, -1]
        return (last.gather(1, ans) - last.gather(1, wrong))[:, 0].double()

    rows = [torch.tensor(i) for b in resample_indices(len(task), B, seed=0) for i in b]
    reps = [float(ablated(a[i].mean(0))[i].mean()) for i in rows]
    return ablated(a.mean(0)).numpy(), np.array(reps)


@pytest.mark.parametrize("site,pos", [("L0.mlp", None), ("L1.mlp", -1)])
def test_first_order_bootstrap_follows_the_recomputed_mean(mlp_model, site, pos):
    task = _constant_clean_task(mlp_model)
    s = parse_site(site).at((pos,)) if pos is not None else parse_site(site)
    hook = f"blocks.{s.layer}.hook_mlp_out"
    cond = Condition("clean", site_patches([s], "mean"))
    r = Engine(mlp_model, max_rows=16).run(task, [cond], metric("logit_diff"), influence=True)
    f, infl = r.values[0], r.influence[0]
    f0, brute = _brute_force(mlp_model, task, hook, pos)
    np.testing.assert_allclose(f, f0, atol=1e-4)  # the mean-ablated run itself
    assert abs(infl.sum()) < 1e-8  # the corrections leave the point estimate alone
    idx = np.concatenate(list(resample_indices(len(task), B, seed=0)))
    ours = (f + infl)[idx].mean(1)
    fixed = f[idx].mean(1)
    # holding the mean fixed misses all of it (what makes the check fail) ...
    assert fixed.std() < 1e-4 * brute.std()
    # ... the first-order bootstrap follows the recomputed one replicate by replicate
    assert np.corrcoef(ours, brute)[0, 1] > 0.98
    assert abs(ours.std() / brute.std() - 1) < 0.1


def test_influence_is_batch_invariant_and_cached(mlp_model):
    from causal_mi.engine.cache import RunCache

    task = _constant_clean_task(mlp_model)
    cond = Condition("clean", site_patches([parse_site("L0.mlp")], "mean"))
    fn = metric("logit_diff")
    a = Engine(mlp_model, max_rows=64).run(task, [cond], fn, influence=True).influence
    cache = RunCache(None)
    b = Engine(mlp_model, max_rows=7, cache=cache).run(task, [cond], fn, influence=True)
    np.testing.assert_allclose(a, b.influence, atol=1e-6)
    calls = []
    warm = Engine(mlp_model, max_rows=7, cache=cache)
    warm._patched = lambda *args: calls.append(1)  # a warm run computes nothing
    np.testing.assert_array_equal(warm.run(task, [cond], fn, influence=True).influence, b.influence)
    assert not calls


def _file(tmp: Path, model_dir: Path, ablation: str) -> Path:
    rows = [
        {
            "clean": "w1 w2 w3 w4",
            "corrupt": f"w{5 + i % 30} w2 w3 w4",
            "answer": " w5",
            "wrong": " w6",
        }
        for i in range(30)
    ]
    (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp / "h.yaml"
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "name: mean",
                f"model: 'path:{model_dir}'",
                "task: {file: pairs.jsonl}",
                f"ablation: {ablation}",
                "nodes: {a: L0H1, b: L1.mlp}",
                "claims:",
                "  - effect(a) >= -10",
                "  - indirect(a -> b -> logits) >= -10",
            ]
        )
        + "\n"
    )
    return path


def test_measure_states_how_the_mean_entered_each_interval(tmp_path, mlp_dir):
    from causal_mi.effects.measure import MEAN_FIXED_NOTE, measure
    from causal_mi.pipeline import prepare

    prep = prepare(_file(tmp_path, mlp_dir, "mean"))
    m = measure(prep.hypothesis, prep.model, prep.task, max_rows=64)
    assert m.estimates["effect(L0H1)"].mean_source == "resampled"
    assert m.estimates[m.claim_labels[1]].mean_source.startswith("held fixed")
    assert any(n.startswith(MEAN_FIXED_NOTE) and "indirect" in n for n in m.notes)
    prep = prepare(_file(tmp_path, mlp_dir, "resample"))
    m = measure(prep.hypothesis, prep.model, prep.task, max_rows=64)
    assert all(e.mean_source == "" for e in m.estimates.values())
