"""A sweep's working memory stays within its budget.

The tensor memory a sweep allocates is read from PyTorch's CPU allocator through its
profiler (every allocation and free, in order; the running sum's maximum is the peak of
live tensor bytes), not from the engine's own estimates. The bound is what the engine
promises: the budget (:func:`causal_mi.engine.budget.sweep_budget` by default) for the
patched runs' working memory, plus what the sweep keeps for its whole task (the recorded
runs, :func:`causal_mi.engine.budget.sweep_record_bytes`) and the recorded runs' logits.
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from causal_mi.engine import budget as bud
from causal_mi.engine import incremental as inc
from causal_mi.engine import joins
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


def _task(model, n=4, seq_len=6, seed=0) -> Task:
    gen = GENERATORS["repeated_tokens"]
    params = resolved_params(gen, {"seq_len": seq_len, "repeat": 2})
    return Task("t", tuple(gen.make(model.tokens, n, seed, params)))


def _peak_bytes(fn) -> tuple[int, object]:
    """(peak live tensor bytes allocated on the CPU while ``fn`` runs, its result)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
    events = prof.profiler.kineto_results.events()
    sizes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    live = peak = 0
    for _, n in sizes:
        live += n
        peak = max(peak, live)
    return peak, out


def _sweep(model, task, family, max_memory, metric="logit_diff"):
    m = inc.incremental_model(model)
    ex = task.examples
    clean = torch.tensor([e.clean for e in ex])
    corrupt = torch.tensor([e.corrupt for e in ex])
    answer = torch.tensor([e.answer for e in ex])
    wrong = torch.tensor([e.wrong for e in ex])

    def run():
        with torch.inference_mode():
            return joins.run_sweep(
                m,
                family,
                corrupt,
                clean,
                answer,
                wrong,
                metric_name=metric,
                base_is_clean=False,
                max_memory=max_memory,
            )[1]

    return m, run


def _bound(m, B: int, P: int, max_memory: int | None) -> int:
    shape = joins._shape(m)
    work = bud.sweep_budget(shape, B, P) if max_memory is None else max_memory
    kept = bud.sweep_record_bytes(shape, P, B) + 2 * B * bud.logit_row_bytes(shape)
    return work + kept


@pytest.mark.parametrize("family", ["head_out", "resid_pre"])
@pytest.mark.parametrize("metric", ["logit_diff", "kl"])
def test_sweep_peak_memory_within_budget(mlp_model, family, metric):
    task = _task(mlp_model)
    B, P = len(task.examples), task.examples[0].length
    m, run = _sweep(mlp_model, task, family, None, metric)
    run()  # first-call allocations (rotary tables, caches) are not the sweep's
    peak, result = _peak_bytes(run)
    assert result.chunks > 1  # the budget made several chunks
    assert peak <= _bound(m, B, P, None)


def test_a_sweep_ignoring_its_budget_is_caught(mlp_model, monkeypatch):
    """The failing case: every run in one chunk (a per-run estimate of one byte) and every
    run's full-vocabulary logits held at once exceed the same bound."""
    task = _task(mlp_model)
    B, P = len(task.examples), task.examples[0].length
    m, run = _sweep(mlp_model, task, "resid_pre", None, "kl")
    run()
    bound = _bound(m, B, P, None)
    peak, _ = _peak_bytes(run)
    assert peak <= bound
    monkeypatch.setattr(joins, "_bytes_per_run", lambda *a: 1)
    monkeypatch.setattr(bud, "logit_row_bytes", lambda *a: 1)
    peak, result = _peak_bytes(run)
    assert result.chunks == 1
    assert peak > bound


def test_unembed_at_reads_the_full_unembeddings_columns(mlp_model, monkeypatch):
    """The logits of a few columns, computed from the vocabulary blocks that hold them,
    equal the same columns of the full unembedding (the model's own product, through
    :func:`causal_mi.engine.incremental.unembed`); a block narrower than the vocabulary is
    forced so that several blocks and their offsets are exercised."""
    monkeypatch.setattr(inc, "UNEMBED_BLOCK", 16)
    m = inc.incremental_model(mlp_model)
    assert m.vocab > 2 * 16  # three blocks, the last one shorter
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, m.d_model, generator=g)
    cols = torch.randint(m.vocab, (7, 2), generator=g)
    cols[0] = torch.tensor([0, m.vocab - 1])  # the first and the last (shorter) block
    with torch.inference_mode():
        full = inc.unembed(m, x)
        got = inc.unembed_at(m, x, cols)
    rows = torch.arange(7)[:, None]
    torch.testing.assert_close(got, full[rows, cols], atol=1e-6, rtol=0)
    # the failing case: another row's columns
    assert (got - full[rows, cols.roll(1, 0)]).abs().max() > 1e-3
