"""Gaussian-noise corruption (causal tracing): the corrupt run is the clean prompt with noise
on the embeddings. Checked against the hand-written reference forward pass, for invariance
(batching, chunking, order, subsets), for seeding, on a planted model where the answer
provably ignores a position, and end to end through the CLI on zoo:induction-2l."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from causal_mi.engine.metrics import metric
from causal_mi.engine.noise import noise_draw, noise_seed
from causal_mi.engine.plan import ABLATION_SOURCE, Condition, EdgePlan, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Noise, Task
from causal_mi.tasks.generators import GENERATORS, resolved_params
from tests.engine import reference

torch.set_num_threads(1)

POSITIONS = (1, 2, -3)


def _noised(task: Task, positions=POSITIONS, scale: float = 3.0, seed: int = 0) -> Task:
    """``task`` corrupted by noise, as the task builder does it (corrupt := clean)."""
    return Task(
        task.name,
        tuple(
            dataclasses.replace(e, corrupt=e.clean, noise=Noise(positions, scale, seed, i))
            for i, e in enumerate(task.examples)
        ),
    )


def _task(model, n: int = 10, **noise) -> Task:
    gen = GENERATORS["repeated_tokens"]
    examples = gen.make(model.tokens, n, 3, resolved_params(gen, {}))
    return _noised(Task("t", tuple(examples)), **noise)


def _noise(model, task: Task) -> torch.Tensor:
    """[n, L, d_model] float64: every example's draw, as the engine draws it."""
    w_e = model.bridge.W_E.detach().double()
    L = task.examples[0].length
    return torch.stack(
        [noise_draw(e.noise, L, w_e.shape[1], float(w_e.std())) for e in task.examples]
    )


def _reference_logit_diff(model, task: Task, patch) -> np.ndarray:
    toks = torch.tensor([e.clean for e in task.examples])
    logits = reference.forward(model.bridge, toks, patch)[:, -1]
    rows = torch.arange(len(task))
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])
    return (logits[rows, ans] - logits[rows, wrong]).numpy()


def _add_noise(noise: torch.Tensor):
    def patch(point, layer, value):
        return value + noise if (point, layer) == ("resid_pre", 0) else value

    return patch


def test_noise_draw_is_seeded_and_placed():
    d, L = 16, 9
    a = noise_draw(Noise((1, -2), 3.0, 5, 4), L, d, std=0.5)
    assert a.shape == (L, d) and a.dtype == torch.float64
    nonzero = sorted(int(p) for p in a.abs().sum(-1).nonzero())
    assert nonzero == [1, L - 2]
    # fixed by (seed, index): the same draw, a different one for another seed or index
    torch.testing.assert_close(a, noise_draw(Noise((1, -2), 3.0, 5, 4), L, d, std=0.5))
    assert not torch.allclose(a, noise_draw(Noise((1, -2), 3.0, 6, 4), L, d, std=0.5))
    assert not torch.allclose(a, noise_draw(Noise((1, -2), 3.0, 5, 3), L, d, std=0.5))
    # the value at a position does not depend on the other noised positions
    torch.testing.assert_close(a[1], noise_draw(Noise((1,), 3.0, 5, 4), L, d, std=0.5)[1])
    # N(0, (scale * std)^2), from the example's own generator
    g = torch.Generator().manual_seed(noise_seed(5, 4))
    torch.testing.assert_close(a[1], torch.randn(L, d, generator=g, dtype=torch.float64)[1] * 1.5)
    big = noise_draw(Noise(tuple(range(200)), 3.0, 0, 0), 200, 64, std=0.5)
    assert big.std().item() == pytest.approx(1.5, rel=0.02)


def test_noised_corrupt_run_matches_reference(mlp_model):
    """The corrupt baseline is the clean prompt with the noise added to the embeddings."""
    task = _task(mlp_model)
    r = Engine(mlp_model).run(task, [Condition("corrupt")], metric("logit_diff"))
    want = _reference_logit_diff(mlp_model, task, _add_noise(_noise(mlp_model, task)))
    np.testing.assert_allclose(r.corrupt, want, atol=1e-5)
    np.testing.assert_allclose(r.values[0], want, atol=1e-5)
    clean = _reference_logit_diff(mlp_model, task, None)
    np.testing.assert_allclose(r.clean, clean, atol=1e-5)
    assert np.abs(r.corrupt - r.clean).min() > 1e-3  # the noise matters on every example


# site text -> (reference patch point, channel or None), as in test_reference
SITES = {
    "L0H1": ("z", 1),
    "L1H2.k": ("k", 2),
    "L1H3.pattern": ("pattern", 3),
    "L0.mlp": ("mlp_out", None),
    "L1.resid_pre": ("resid_pre", None),
}


def _set(value, ch, point, source):
    value = value.clone()
    if ch is None:
        value[:] = source
    elif point == "pattern":
        value[:, ch] = source[:, ch]
    else:
        value[:, :, ch] = source[:, :, ch]
    return value


@pytest.mark.parametrize("ablation", ["resample", "mean"])
@pytest.mark.parametrize("site_text", list(SITES))
def test_ablation_sources_are_the_noised_run(mlp_model, site_text, ablation):
    """Resample and mean ablations read the noised corrupt run; restoring into it patches
    the clean value into the noised run."""
    task = _task(mlp_model)
    noise = _noise(mlp_model, task)
    site = parse_site(site_text)
    point, ch = SITES[site_text]
    conds = [
        Condition("clean", site_patches([site], ABLATION_SOURCE[ablation])),
        Condition("corrupt", site_patches([site], "clean")),
    ]
    got = Engine(mlp_model).run(task, conds, metric("logit_diff")).values
    toks = torch.tensor([e.clean for e in task.examples])
    clean_rec = reference.record(mlp_model.bridge, toks)
    noised_rec = {}

    def grab(p, layer, value):
        value = _add_noise(noise)(p, layer, value)
        noised_rec[(p, layer)] = value.clone()
        return value

    reference.forward(mlp_model.bridge, toks, grab)
    key = (point, site.layer)
    src = noised_rec[key]
    if ablation == "mean":
        src = src.mean(0, keepdim=True).expand_as(src)

    def ablate(p, layer, value):
        return _set(value, ch, point, src) if (p, layer) == key else value

    def restore(p, layer, value):
        value = _add_noise(noise)(p, layer, value)
        return _set(value, ch, point, clean_rec[key]) if (p, layer) == key else value

    np.testing.assert_allclose(got[0], _reference_logit_diff(mlp_model, task, ablate), atol=1e-5)
    np.testing.assert_allclose(got[1], _reference_logit_diff(mlp_model, task, restore), atol=1e-5)


def test_restoring_the_embeddings_undoes_the_noise(mlp_model):
    """The noise is added before any patch of the embed site, so restoring the clean
    embeddings gives back the clean run exactly (and only at the noised positions matters)."""
    task = _task(mlp_model)
    embed = parse_site("embed")
    conds = [
        Condition("corrupt", site_patches([embed], "clean")),
        Condition("corrupt", site_patches([embed.at(POSITIONS)], "clean")),
        Condition("corrupt", site_patches([embed.at((0, 3))], "clean")),
    ]
    r = Engine(mlp_model).run(task, conds, metric("logit_diff"))
    np.testing.assert_allclose(r.values[0], r.clean, atol=1e-5)
    np.testing.assert_allclose(r.values[1], r.clean, atol=1e-5)
    np.testing.assert_allclose(r.values[2], r.corrupt, atol=1e-5)


def _conditions() -> list[Condition]:
    conds = [Condition("clean"), Condition("corrupt")]
    for text in ("L0H1", "L1H3.pattern", "L1.mlp", "embed", "L0.resid_mid"):
        s = parse_site(text)
        conds.append(Condition("clean", site_patches([s], "corrupt")))
        conds.append(Condition("corrupt", site_patches([s], "clean")))
        conds.append(Condition("clean", site_patches([s.at((-1,))], "mean")))
    return conds


def test_batched_equals_one_at_a_time(mlp_model):
    task = _task(mlp_model)
    conds = _conditions()
    fn = metric("logit_diff")
    batched = Engine(mlp_model, max_rows=512).run(task, conds, fn)
    for rows in (1, 7):  # one row per pass; chunks that cut through conditions and examples
        small = Engine(mlp_model, max_rows=rows).run(task, conds, fn)
        np.testing.assert_allclose(small.values, batched.values, atol=1e-5)
        np.testing.assert_allclose(small.corrupt, batched.corrupt, atol=1e-5)
    # each example alone (a task of one): its noise is its own, whatever runs beside it
    no_mean = [i for i, c in enumerate(conds) if all(p.source != "mean" for p in c.patches)]
    for j in (0, 4, len(task) - 1):
        alone = Engine(mlp_model).run(Task("one", (task.examples[j],)), conds, fn)
        np.testing.assert_allclose(alone.values[no_mean, 0], batched.values[no_mean, j], atol=1e-5)
    # order does not matter
    rev = Task("rev", task.examples[::-1])
    r = Engine(mlp_model, max_rows=5).run(rev, conds, fn)
    np.testing.assert_allclose(r.values[:, ::-1], batched.values, atol=1e-5)


def test_same_seed_same_result_other_seed_different(mlp_model):
    fn = metric("logit_diff")
    a = Engine(mlp_model).run(_task(mlp_model, seed=0), [], fn)
    b = Engine(mlp_model).run(_task(mlp_model, seed=0), [], fn)
    c = Engine(mlp_model).run(_task(mlp_model, seed=1), [], fn)
    np.testing.assert_array_equal(a.corrupt, b.corrupt)  # reruns are identical
    assert np.abs(a.corrupt - c.corrupt).min() > 1e-4


def test_path_patching_reads_the_noised_run(mlp_model):
    """With every edge ablated, each receiver reads the noised corrupt run, so the engine's
    own forward pass reproduces the bridge's noised corrupt run; so does a corrupt-based
    edge condition with nothing ablated."""
    task = _task(mlp_model)
    conds = [
        Condition("clean", edges=EdgePlan(frozenset(), "corrupt", complement=True)),
        Condition("corrupt", edges=EdgePlan(frozenset(), "corrupt", complement=False)),
        Condition("clean", edges=EdgePlan(frozenset(), "corrupt", complement=False)),
    ]
    for rows in (256, 3):
        r = Engine(mlp_model, max_rows=rows).run(task, conds, metric("logit_diff"))
        np.testing.assert_allclose(r.values[0], r.corrupt, atol=1e-4)
        np.testing.assert_allclose(r.values[1], r.corrupt, atol=1e-4)
        np.testing.assert_allclose(r.values[2], r.clean, atol=1e-4)


@pytest.fixture(scope="module")
def blind_model(tmp_path_factory):
    """A planted model whose answer provably reads only the last position: attention-only
    with every W_O zero, so each head adds only its bias and the last position's logits are
    a function of the last token's embedding alone."""
    from causal_mi.models.loading import load_model
    from tests.conftest import make_native

    d = make_native(tmp_path_factory.mktemp("blind"), attn_only=True, seed=2)
    model = load_model(f"path:{d}")
    zeroed = [k for k in model.bridge.state_dict() if k.endswith("attn.o.weight")]
    assert len(zeroed) == 2
    with torch.no_grad():
        for k in zeroed:
            model.bridge.state_dict()[k].zero_()
    return model


def test_noise_where_the_answer_does_not_look_changes_nothing(blind_model):
    fn = metric("logit_diff")
    away = Engine(blind_model).run(_task(blind_model, positions=(0, 1, 5, -2)), [], fn)
    np.testing.assert_array_equal(away.corrupt, away.clean)
    # the perturbation is detected where the answer does look
    last = Engine(blind_model).run(_task(blind_model, positions=(-1,)), [], fn)
    assert np.abs(last.corrupt - last.clean).min() > 1e-3


HYPOTHESIS = """\
version: 1
name: induction-tracing
description: Causal tracing of induction; noise on the first occurrence of the segment.
model: zoo:induction-2l
task:
  generator: repeated_tokens   # BOS + s (positions 1..8) + s[:4]; answer s[4]
  n: 60
  seed: 0
  noise:
    positions: [1, 2, 3, 4, 5, 6, 7, 8]
    scale: 3.0
    seed: 0
metric: logit_diff
ablation: resample
nodes:
  after: {{at: L0.resid_post, pos: 5}}   # the token after the earlier occurrence
  before: {{at: L0.resid_post, pos: 4}}
  ind: L1H1
claims:
  - restore(after) >= 0.7
  - restore(before) {op} 0.1
  - effect(ind) >= 0.2
  - effect(ind.pattern) >= 0.2
"""


@pytest.mark.parametrize(("op", "code"), [("<=", 0), (">=", 1)], ids=["true", "false"])
def test_noise_hypothesis_verifies_end_to_end(tmp_path, op, code):
    from typer.testing import CliRunner

    from causal_mi.cli import app

    path = tmp_path / "tracing.yaml"
    path.write_text(HYPOTHESIS.format(op=op))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["verify", str(path), "--out", str(out)])
    assert result.exit_code == code, result.output
    base = json.loads((out / "results.json").read_text())["baseline"]
    # noise on the first occurrence hurts the induction behaviour
    assert base["clean_mean"] - base["corrupt_mean"] > 3.0
