"""Token roles: located by templates, patched role to role, on prompts of any lengths.

References are hand-written patched forward passes on the bridge (hooks set by the test,
positions found by hand), independent of the engine's bucketing and per-row masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import Kind, Role, Site
from causal_mi.tasks.base import Example, Task, role_map
from causal_mi.tasks.templates import TemplateError, fill, locate

# (clean words, clean IO index, corrupt words, corrupt IO index), word indices 0-based; the
# prompts differ in length and the role moves between them.
ROWS = [
    ("w1 w2 w3 w4 w5", 1, "w6 w7 w3 w4 w2 w5", 4),
    ("w8 w9 w10 w11", 2, "w8 w9 w10 w11", 2),
    ("w12 w13 w14 w15 w16 w17", 0, "w18 w13 w14", 2),
    ("w1 w20 w21", 2, "w22 w23 w24 w25 w21", 3),
    ("w30 w31 w32 w33 w34", 3, "w30 w31 w32 w35 w34", 3),
]


def _examples(tok, *, answers=None, read="END") -> list[Example]:
    out = []
    for i, (c, ci, r, ri) in enumerate(ROWS):
        clean, corrupt = tok.prompt(c), tok.prompt(r)
        a, w = tok.pieces(" w2")[0], tok.pieces(" w3")[0]
        sets = {} if answers is None else answers(tok)
        out.append(
            Example(
                tuple(clean),
                tuple(corrupt),
                a,
                w,
                f"rows #{i}",
                roles=role_map({"IO": ci + 1, "P": 1}, len(clean)),  # +1: BOS
                corrupt_roles=role_map({"IO": ri + 1, "P": 1}, len(corrupt)),
                read=read,
                **sets,
            )
        )
    return out


def _hand(model, ex: Example, layer: int, head: int | None, base: str, site: str, role="IO"):
    """Metric (logit diff at the last position) of ``base`` with ``site`` at ``role`` taken
    from the other prompt at that prompt's role position."""
    other = "corrupt" if base == "clean" else "clean"
    hook = f"blocks.{layer}.attn.hook_z" if site == "head" else f"blocks.{layer}.hook_resid_pre"
    src_tokens = torch.tensor([getattr(ex, other)])
    dst_tokens = torch.tensor([getattr(ex, base)])
    s = ex.roles_of(other)[role][0] if role != -1 else len(getattr(ex, other)) - 1
    t = ex.roles_of(base)[role][0] if role != -1 else len(getattr(ex, base)) - 1
    got = {}
    b = model.bridge
    with torch.no_grad():
        with b.hooks(fwd_hooks=[(hook, lambda a, hook: got.setdefault("v", a.clone()))]):
            b(src_tokens)

        def put(a, hook):
            a = a.clone()
            if head is None:
                a[0, t] = got["v"][0, s]
            else:
                a[0, t, head] = got["v"][0, s, head]
            return a

        with b.hooks(fwd_hooks=[(hook, put)]):
            logits = b(dst_tokens)[0, -1].double()
    return float(logits[ex.answer] - logits[ex.wrong])


@pytest.mark.parametrize("base", ["clean", "corrupt"])
def test_role_patch_maps_role_to_role(mlp_model, base):
    """Patching a head and a residual point at role IO reads the other prompt's IO position,
    though the prompts differ in length and IO moves (rows 0, 2, 3)."""
    task = Task("rows", tuple(_examples(mlp_model.tokens)))
    source = "corrupt" if base == "clean" else "clean"
    head = Site(Kind.HEAD, 0, 2, pos=(Role("IO"),))
    resid = Site(Kind.RESID, 1, channel="resid_pre", pos=(Role("IO"),))
    end = Site(Kind.RESID, 1, channel="resid_pre", pos=(-1,))
    conds = [Condition(base, site_patches([s], source)) for s in (head, resid, end)]
    r = Engine(mlp_model, max_rows=64).run(task, conds, metric("logit_diff"))
    for i, ex in enumerate(task.examples):
        want = [
            _hand(mlp_model, ex, 0, 2, base, "head"),
            _hand(mlp_model, ex, 1, None, base, "resid"),
            _hand(mlp_model, ex, 1, None, base, "resid", role=-1),
        ]
        np.testing.assert_allclose(r.values[:, i], want, atol=1e-5)
    unpatched = r.clean if base == "clean" else r.corrupt
    differ = [i for i, (c, _, x, _) in enumerate(ROWS) if c != x]  # row 1: prompts equal
    assert np.abs(r.values - unpatched)[:, differ].min() > 1e-4, "every patch must matter"
    moved = [i for i, (_, ci, _, ri) in enumerate(ROWS) if ci != ri]
    assert moved, "the test needs a role that moves"


def test_role_patch_detects_position_aligned_patching(mlp_model):
    """The check fails for an engine that patches by clean position: on a row where IO
    moves, the position-aligned patch gives another value."""
    ex = _examples(mlp_model.tokens)[0]
    aligned = dict(ex.roles_of("clean"))
    wrong = dataclasses.replace(ex, corrupt_roles=role_map({"IO": aligned["IO"]}, len(ex.corrupt)))
    assert (
        abs(
            _hand(mlp_model, ex, 0, 2, "clean", "head")
            - _hand(mlp_model, wrong, 0, 2, "clean", "head")
        )
        > 1e-4
    )


def _answer_sets(tok):
    ids = lambda ws: tuple((tok.pieces(w)[0],) for w in ws)  # noqa: E731
    return {"answers": ids([" w2", " w5", " w9"]), "wrongs": ids([" w3", " w4"])}


@pytest.mark.parametrize("name", ["logit_diff", "prob", "logprob", "prob_diff"])
def test_answer_sets_and_read_at_match_hand_scores(mlp_model, name):
    """Answer sets scored by log-sum-exp / summed probability, read at role P, against the
    bridge's own logits at that position."""
    exs = _examples(mlp_model.tokens, answers=_answer_sets, read="P")
    task = Task("rows", tuple(exs))
    r = Engine(mlp_model, max_rows=64).run(task, [Condition("clean")], metric(name))
    for i, ex in enumerate(exs):
        with torch.no_grad():
            logits = mlp_model.bridge(torch.tensor([ex.clean]))[0, 1].double()
        logp = torch.log_softmax(logits, -1)
        pa = sum(float(logp[s[0]].exp()) for s in ex.answers)
        pw = sum(float(logp[s[0]].exp()) for s in ex.wrongs)
        want = {
            "logit_diff": np.log(pa) - np.log(pw),
            "prob": pa,
            "logprob": np.log(pa),
            "prob_diff": pa - pw,
        }[name]
        np.testing.assert_allclose(r.clean[i], want, rtol=1e-6, atol=1e-9)


def test_plain_logit_diff_is_the_logit_difference(mlp_model):
    """One single-token answer and wrong in set form: exactly logit(a) - logit(w)."""
    from causal_mi.engine.metrics import metric_values

    logits = torch.randn(3, 2, 11, dtype=torch.float64)
    a, w = torch.tensor([1, 4, 7]), torch.tensor([2, 5, 8])
    got = metric_values("logit_diff", logits, a[:, None, None], w[:, None, None], None)
    want = logits[torch.arange(3), 0, a] - logits[torch.arange(3), 0, w]
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_multi_token_answer_is_teacher_forced(mlp_model):
    """logprob of a 3-token answer: the sum of each token's log-probability given the
    prompt and the answer's earlier tokens."""
    tok = mlp_model.tokens
    seq = tuple(tok.pieces(" w5 w6 w7"))
    assert len(seq) == 3
    exs = [
        Example(
            tuple(tok.prompt(c)),
            tuple(tok.prompt(r)),
            seq[0],
            tok.pieces(" w1")[0],
            f"#{i}",
            answers=(seq,),
        )  # fmt: skip
        for i, (c, _, r, _) in enumerate(ROWS)
    ]
    task = Task("multi", tuple(exs))
    r = Engine(mlp_model, max_rows=64).run(task, [Condition("clean")], metric("logprob"))
    for i, ex in enumerate(exs):
        full = torch.tensor([ex.clean + seq[:-1]])
        with torch.no_grad():
            logp = torch.log_softmax(mlp_model.bridge(full)[0].double(), -1)
        P = len(ex.clean)
        want = sum(float(logp[P - 1 + k, seq[k]]) for k in range(3))
        np.testing.assert_allclose(r.clean[i], want, atol=1e-5)
        np.testing.assert_allclose(r.corrupt[i], _corrupt_lp(mlp_model, ex, seq), atol=1e-5)


def _corrupt_lp(model, ex, seq) -> float:
    full = torch.tensor([ex.corrupt + seq[:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(model.bridge(full)[0].double(), -1)
    P = len(ex.corrupt)
    return sum(float(logp[P - 1 + k, seq[k]]) for k in range(len(seq)))


def test_mixed_lengths_batched_equal_one_at_a_time(mlp_model):
    """Prompts of five (clean, corrupt) length pairs, roles, answer sets, read at a role:
    the whole task in one run equals each example run alone (1e-5), in any chunking."""
    exs = _examples(mlp_model.tokens, answers=_answer_sets, read="END")
    exs += _examples(mlp_model.tokens)  # plain rows: same lengths, other answers
    task = Task("mixed", tuple(exs))
    sites = [
        Site(Kind.HEAD, 1, 2, pos=(Role("IO"), Role("END"))),
        Site(Kind.HEAD_INPUT, 1, 0, channel="k", pos=(Role("IO"),)),
        Site(Kind.MLP, 0, pos=(-1, Role("P"))),
        Site(Kind.NEURON, 0, index=5, pos=(Role("IO"),)),
        Site(Kind.RESID, 0, channel="resid_mid", pos=(Role("IO"),)),
    ]
    conds = [Condition("clean")]
    for s in sites:
        conds += [
            Condition("clean", site_patches([s], "corrupt")),
            Condition("corrupt", site_patches([s], "clean")),
            Condition("clean", site_patches([s], "zero")),
        ]
    fn = metric("logit_diff")
    whole = Engine(mlp_model, max_rows=512).run(task, conds, fn)
    chunked = Engine(mlp_model, max_rows=3).run(task, conds[::-1], fn)
    np.testing.assert_allclose(chunked.values[::-1], whole.values, atol=1e-5)
    for i, ex in enumerate(exs):
        alone = Engine(mlp_model, max_rows=512).run(Task("one", (ex,)), conds, fn)
        np.testing.assert_allclose(alone.values[:, 0], whole.values[:, i], atol=1e-5)
        np.testing.assert_allclose(alone.clean[0], whole.clean[i], atol=1e-5)
    assert np.ptp(whole.values, axis=0).max() > 1e-3, "the patches must change the metric"


def test_all_position_patch_between_lengths_is_refused(mlp_model):
    from causal_mi.errors import InputError

    task = Task("rows", tuple(_examples(mlp_model.tokens)))
    cond = Condition("clean", site_patches([Site(Kind.HEAD, 1, 2)], "corrupt"))
    with pytest.raises(InputError, match="same length"):
        Engine(mlp_model).run(task, [cond], metric("logit_diff"))


def test_fill_and_locate(mlp_model):
    text, spans = fill("w1 {IO} w2 {S1} w3 {S2} w4", {"IO": "w5", "S1": "w6", "S2": "w6"})
    assert text == "w1 w5 w2 w6 w3 w6 w4"
    ids, roles = locate(mlp_model.tokens, text, spans)
    assert ids == mlp_model.tokens.prompt(text)
    assert roles == {"IO": (2,), "S1": (4,), "S2": (6,)}  # BOS at 0
    with pytest.raises(TemplateError, match=r"placeholder \{S2\} has no value"):
        fill("{IO} and {S2}", {"IO": "w1"})
    with pytest.raises(TemplateError, match="stray"):
        fill("{IO} and {", {"IO": "w1"})
    assert fill("{{x}} {A}", {"A": "w1"}) == ("{x} w1", {"A": (4, 6)})


def test_attention_variable_from_and_to_roles(mlp_model):
    """{attention: L1H2, from: END, to: IO} reads, per row, the pattern weight from that
    row's END to its IO (a hand-made pattern tensor)."""
    from causal_mi.properties.variables import parse_variables, raw_values

    spec = {"v": {"attention": "L1H2", "from": "S2", "to": "IO", "above": 0.5}}
    (v,), problems = parse_variables(spec, {}, mlp_model.dims)
    assert not problems
    R, P = 3, 7
    pattern = torch.rand(R, 4, P, P)
    roles = {"S2": [6, 5, 4], "IO": [2, 1, 3]}
    got = raw_values(v, pattern, torch.zeros(R, P, dtype=torch.long), torch.zeros(R), None, roles)
    want = [float(pattern[r, 2, roles["S2"][r], roles["IO"][r]]) for r in range(R)]
    np.testing.assert_allclose(got, want)
    both = {"v": {"attention": "L1H2", "from": "END", "pos": -1, "to": "IO", "above": 0.5}}
    assert parse_variables(both, {}, mlp_model.dims)[1]


def test_mean_at_a_role_averages_each_prompts_own_position(mlp_model):
    """Mean ablation at role IO: the mean over the bucket's corrupt prompts of the value at
    each prompt's own IO position (here 1, 3 and 2), patched at each clean prompt's IO."""
    tok = mlp_model.tokens
    specs = [("w1 w2 w3 w4", 1, "w5 w6 w7 w8", 3), ("w9 w10 w11 w12", 3, "w13 w14 w15 w16", 2),
             ("w17 w18 w19 w20", 2, "w21 w22 w23 w24", 1)]  # fmt: skip
    exs = [
        Example(
            tuple(tok.prompt(c)),
            tuple(tok.prompt(r)),
            tok.pieces(" w2")[0],
            tok.pieces(" w3")[0],
            f"#{i}",
            roles=role_map({"IO": ci}, 5),
            corrupt_roles=role_map({"IO": ri}, 5),
        )  # fmt: skip
        for i, (c, ci, r, ri) in enumerate(specs)
    ]
    site = Site(Kind.HEAD, 0, 1, pos=(Role("IO"),))
    r = Engine(mlp_model).run(
        Task("m", tuple(exs)), [Condition("clean", site_patches([site], "mean"))], metric("kl")
    )
    hook = "blocks.0.attn.hook_z"
    b = mlp_model.bridge
    vals = []
    with torch.no_grad():
        for ex in exs:
            got = {}
            with b.hooks(fwd_hooks=[(hook, lambda a, hook, got=got: got.setdefault("v", a))]):
                b(torch.tensor([ex.corrupt]))
            vals.append(got["v"][0, ex.roles_of("corrupt")["IO"][0], 1])
        mean = torch.stack(vals).mean(0)
        for i, ex in enumerate(exs):
            t = ex.roles_of("clean")["IO"][0]

            def put(a, hook, t=t):
                a = a.clone()
                a[0, t, 1] = mean
                return a

            ref = torch.log_softmax(b(torch.tensor([ex.clean]))[0, -1].double(), -1)
            with b.hooks(fwd_hooks=[(hook, put)]):
                logp = torch.log_softmax(b(torch.tensor([ex.clean]))[0, -1].double(), -1)
            want = -float((ref.exp() * (ref - logp)).sum())
            np.testing.assert_allclose(r.values[0, i], want, atol=1e-6)
            assert abs(want) > 1e-6
