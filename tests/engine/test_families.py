"""Every dense decoder family the engine implements, on a tiny random Hugging Face model per
family (``tests/engine/families.py``), held to references outside causal-mi:

- the engine's own forward passes (path patching's and the incremental engine's) give the
  Hugging Face model's own logits, and knocking out any one feature breaks that equality
  (each feature of the config is exercised);
- every sweep family of the incremental engine equals the hook engine;
- a single-edge path patch equals one written by hand on the HF modules;
- cutting every out-edge of a node equals ablating the node through hooks;
- on grouped-query models a ``LxHy.k`` patch equals a hand-written patched HF attention that
  changes query head y's key only (and differs from patching the whole key/value head).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from causal_mi.effects.patching import act_patch
from causal_mi.engine import incremental as inc
from causal_mi.engine.functional import forward
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, EdgePlan, sender_index, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.errors import InputError
from causal_mi.models.weights import extract
from causal_mi.spec.sites import Kind, Site, parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params
from tests.engine.families import FAMILIES, build

GQA = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo2")
GQA += ("phi3_gqa",)
_CACHE: dict[str, tuple] = {}


def _entry(family: str, tmp_path_factory) -> tuple:
    """(causal-mi's loaded model, the same checkpoint loaded by transformers alone)."""
    if family not in _CACHE:
        from transformers import AutoModelForCausalLM

        from causal_mi.models.loading import load_model

        d = build(family, tmp_path_factory.mktemp(family))
        hf = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager").eval()
        _CACHE[family] = (load_model(f"path:{d}"), hf)
    return _CACHE[family]


def _load(family: str, tmp_path_factory):
    return _entry(family, tmp_path_factory)[0]


def _hf(family: str, tmp_path_factory):
    """The reference: the checkpoint as Hugging Face runs it, never wrapped by the bridge."""
    return _entry(family, tmp_path_factory)[1]


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request, tmp_path_factory):
    return request.param, _load(request.param, tmp_path_factory)


def _task(model, n: int = 4, seed: int = 3) -> Task:
    """Prompts of 9 tokens (longer than the sliding windows of the family configs)."""
    gen = GENERATORS["repeated_tokens"]
    params = resolved_params(gen, {"seq_len": 5, "repeat": 3})
    return Task("t", tuple(gen.make(model.tokens, n, seed, params)))


def _tokens(task: Task, which: str = "clean") -> torch.Tensor:
    return torch.tensor([getattr(e, which) for e in task.examples])


def _logit_diff(logits: torch.Tensor, task: Task) -> np.ndarray:
    rows = torch.arange(len(task))
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])
    return (logits[rows, ans] - logits[rows, wrong]).double().numpy()


# 1. the engine's forward passes are the model's ------------------------------------------------
def test_engine_logits_equal_hf_forward(family_model, tmp_path_factory):
    family, model = family_model
    toks = _tokens(_task(model))
    w = extract(model.bridge)
    with torch.no_grad():
        want = _hf(family, tmp_path_factory)(toks).logits[:, -1]
        path = forward(w, toks).logits
        swept = inc.record(inc.Model(w), toks).logits
    torch.testing.assert_close(path, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(swept, want, atol=1e-4, rtol=0)


def _knock_layers(**changes):
    def fn(w):
        return dataclasses.replace(w, layers=[dataclasses.replace(x, **changes) for x in w.layers])

    return fn


def _knock(**changes):
    return lambda w: dataclasses.replace(w, **changes)


# (family, feature, weights with the feature removed): each must change the logits
KNOCKOUTS = [
    ("llama", "rotary (llama3 scaling)", _knock_layers(rotary=None)),
    ("llama", "attention biases", _knock_layers(b_Q=None, b_K=None)),
    ("mistral", "sliding window", _knock_layers(window=None)),
    ("qwen2", "sliding window", _knock_layers(window=None)),
    ("qwen3", "q/k norms", _knock_layers(q_norm=None, k_norm=None)),
    ("gemma", "embedding scale", _knock(embed_scale=None)),
    ("gemma2", "attention soft-cap", _knock_layers(softcap=None)),
    ("gemma2", "final soft-cap", _knock(final_softcap=None)),
    ("gemma2", "post norms", _knock_layers(post_attn=None, post_mlp=None)),
    ("gemma2", "sliding window", _knock_layers(window=None)),
    ("gemma3_text", "q/k norms", _knock_layers(q_norm=None, k_norm=None)),
    ("gemma3_text", "sliding window", _knock_layers(window=None)),
    ("olmo2", "q/k norms", _knock_layers(q_norm=None, k_norm=None)),
    ("olmo2", "post norms", _knock_layers(post_attn=None, post_mlp=None)),
    ("phi3", "partial rotary", _knock_layers(rotary=None)),
    ("gpt_neox", "partial rotary", _knock_layers(rotary=None)),
    ("gptj", "interleaved partial rotary", _knock_layers(rotary=None)),
    ("gptj", "parallel attention + MLP", _knock(parallel=False)),
    ("gpt_neo", "local attention window", _knock_layers(window=None)),
    ("gpt_neo", "unscaled scores", _knock_layers(scale=0.5)),
    ("opt", "learned positions", _knock(W_pos=None)),
    ("gpt_bigcode", "learned positions", _knock(W_pos=None)),
    ("bloom", "ALiBi", _knock_layers(alibi=None)),
    ("bloom", "embedding LayerNorm", _knock(embed_norm=None)),
    ("falcon", "rotary", _knock_layers(rotary=None)),
    ("falcon", "two parallel norms", lambda w: _knock_layers(ln2=w.layers[0].ln1)(w)),
    ("falcon_mq", "parallel attention + MLP", _knock(parallel=False)),
    ("phi3", "gated MLP", _knock_layers(W_gate=None)),
    ("phi3_gqa", "partial rotary", _knock_layers(rotary=None)),
    ("gpt_neox", "parallel attention + MLP", _knock(parallel=False)),
]


@pytest.mark.parametrize(
    "family,feature,knock", KNOCKOUTS, ids=[f"{f}-{n}" for f, n, _ in KNOCKOUTS]
)
def test_each_feature_is_exercised(family, feature, knock, tmp_path_factory):
    """The failing case of the equality above: without the feature the logits differ."""
    model = _load(family, tmp_path_factory)
    toks = _tokens(_task(model))
    w = extract(model.bridge)
    with torch.no_grad():
        want = _hf(family, tmp_path_factory)(toks).logits[:, -1]
        got = forward(knock(w), toks).logits
    assert (got - want).abs().max() > 1e-3, feature


# 2. sweeps: incremental engine == hook engine -------------------------------------------------
SWEEPS = ["resid_pre", "resid_post", "attn_out", "mlp_out", "head_out", "head_q", "head_k"]
SWEEPS += ["head_v", "head_out_by_pos", "neurons", "resid_mid", "head_pattern"]


# the families whose slower checks run in every suite (GQA + rotary scaling; post norms,
# soft-caps and windows; parallel blocks and partial rotary); the others under -m slow
QUICK = ("llama", "gemma2", "gpt_neox")
EVERY = [f if f in QUICK else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES]


@pytest.mark.parametrize("family", EVERY)
def test_every_sweep_family_equals_hook_engine(family, tmp_path_factory):
    model = _load(family, tmp_path_factory)
    task = _task(model)
    w = extract(model.bridge)
    for fam in SWEEPS:
        if fam == "resid_mid" and w.parallel:  # no stream between attention and MLP
            with pytest.raises(InputError, match="resid_mid does not exist in this model"):
                act_patch(model, task, fam, method="hooks")
            continue
        try:
            want = act_patch(model, task, fam, layer=1, method="hooks")
        except InputError as exc:  # a bridge whose HF attention discards pattern edits
            assert fam == "head_pattern" and "pattern sites" in str(exc), (fam, exc)
            continue
        got = act_patch(model, task, fam, layer=1, method="incremental")
        assert got.flops > 0
        np.testing.assert_allclose(got.per_example, want.per_example, atol=1e-4, err_msg=fam)
        # not a no-op: each family moves the metric beyond float rounding (~1e-7)
        assert np.abs(want.per_example - want.corrupt_values).max() > 2e-5, fam


# 3. a single edge, by hand on the HF modules ----------------------------------------------------
def _hf_parts(family: str, hf):
    """(layers, attention of a layer, its output projection, final norm) of the HF model."""
    if family == "gpt_neox":
        base = hf.gpt_neox
        return base.layers, (lambda la: base.layers[la].attention.dense), base.final_layer_norm
    if family == "opt":
        dec = hf.model.decoder
        return dec.layers, (lambda la: dec.layers[la].self_attn.out_proj), dec.final_layer_norm
    if family in ("gptj", "gpt_neo", "gpt_bigcode", "bloom", "falcon", "falcon_mq"):
        h = hf.transformer.h
        out = {
            "falcon": lambda la: h[la].self_attention.dense,
            "falcon_mq": lambda la: h[la].self_attention.dense,
            "bloom": lambda la: h[la].self_attention.dense,
            "gptj": lambda la: h[la].attn.out_proj,
            "gpt_neo": lambda la: h[la].attn.attention.out_proj,
            "gpt_bigcode": lambda la: h[la].attn.c_proj,
        }[family]
        return h, out, hf.transformer.ln_f
    base = hf.model
    return base.layers, (lambda la: base.layers[la].self_attn.o_proj), base.norm


def _hand_direct_edge(family: str, hf, task: Task, head: int) -> np.ndarray:
    """Logit difference with head ``head`` of layer 0 swapped to its corrupt value in the
    logits' input only (the direct path L0Hh -> logits), computed on the HF modules."""
    layers, o_proj, final_norm = _hf_parts(family, hf)
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        o_proj(0).register_forward_hook(lambda m, i, o: seen.__setitem__("z", i[0])),
        o_proj(0).register_forward_hook(lambda m, i, o: seen.__setitem__("raw", o), prepend=True),
    ]
    try:
        with torch.no_grad():
            runs = {}
            for which in ("clean", "corrupt"):
                hf(_tokens(task, which))
                runs[which] = (seen["z"], seen["raw"])
    finally:
        for h in hooks:
            h.remove()
    z_c, raw_c = runs["clean"]
    z_x = runs["corrupt"][0]
    dh = z_c.shape[-1] // hf.config.num_attention_heads
    W = o_proj(0).weight[:, head * dh : (head + 1) * dh]  # [d, dh]
    delta = (z_x[..., head * dh : (head + 1) * dh] - z_c[..., head * dh : (head + 1) * dh]) @ W.T
    post = getattr(layers[0], "post_attention_layernorm", None)
    normed = family in ("gemma2", "gemma3_text", "olmo2")
    with torch.no_grad():
        # the final stream before the final norm: HF's last hidden state is after it
        final = _final_stream(family, hf, _tokens(task, "clean"))
        change = post(raw_c + delta) - post(raw_c) if normed else delta
        x = final + change
        logits = hf.get_output_embeddings()(final_norm(x))[:, -1]
        cap = getattr(hf.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    return _logit_diff(logits, task)


def _final_stream(family: str, hf, toks: torch.Tensor) -> torch.Tensor:
    """The residual stream after the last block (the final norm's input)."""
    _, _, final_norm = _hf_parts(family, hf)
    seen = {}
    h = final_norm.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0]))
    try:
        hf(toks)
    finally:
        h.remove()
    return seen["x"]


def test_single_edge_path_patch_equals_hand_written(family_model, tmp_path_factory):
    family, model = family_model
    task = _task(model)
    want = _hand_direct_edge(family, _hf(family, tmp_path_factory), task, head=1)
    edge = (sender_index(parse_site("L0H1"), model.dims), ("logits",))
    cond = Condition("clean", edges=EdgePlan(frozenset({edge}), "corrupt", complement=False))
    r = Engine(model).run(task, [cond], metric("logit_diff"))
    np.testing.assert_allclose(r.values[0], want, atol=1e-4)
    assert np.abs(want - r.clean).max() > 1e-4  # the edge matters


# 4. every out-edge cut == node ablation through hooks -------------------------------------------
def _out_edges(sender: Site, dims) -> frozenset:
    s = sender_index(sender, dims)
    rcv = [("logits",)]
    for layer in range(dims.n_layers):
        if layer > sender.layer:
            rcv += [(c, layer, h) for c in "qkv" for h in range(dims.n_heads)]
        if layer >= sender.layer and (layer > sender.layer or sender.kind is Kind.HEAD):
            rcv.append(("mlp", layer))
    return frozenset((s, r) for r in rcv)


@pytest.mark.parametrize("ablation", ["corrupt", "mean"])
def test_every_out_edge_cut_equals_node_ablation(family_model, ablation):
    family, model = family_model
    task = _task(model)
    w = extract(model.bridge)
    conds, sites = [], ["L0H1", "L0.mlp", "L1H2"]
    for name in sites:
        s = parse_site(name)
        edges = _out_edges(s, model.dims)
        if w.parallel and s.kind is Kind.HEAD:  # a parallel MLP does not read its own layer
            edges = frozenset(e for e in edges if e[1] != ("mlp", s.layer))
        conds.append(Condition("clean", edges=EdgePlan(edges, ablation, complement=False)))
        conds.append(Condition("clean", site_patches([s], ablation)))
    r = Engine(model).run(task, conds, metric("logit_diff"))
    for i, name in enumerate(sites):
        np.testing.assert_allclose(r.values[2 * i], r.values[2 * i + 1], atol=1e-4, err_msg=name)
        assert np.abs(r.values[2 * i + 1] - r.clean).max() > 1e-4, name


# 5. grouped-query attention: LxHy.k is query head y's own key -----------------------------------
def _hand_key_patch(hf, task: Task, layer: int, heads: list[int]) -> np.ndarray:
    """Logit difference of the clean run with the key that query heads ``heads`` of
    ``layer`` read replaced by the corrupt run's, written out on the HF attention module."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    attn = hf.model.layers[layer].self_attn
    cfg = hf.config
    state: dict[str, torch.Tensor | None] = {"src": None}
    if hasattr(attn, "qkv_proj"):  # Phi-3: one fused projection, rotary on part of a head
        from transformers.models.phi3.modeling_phi3 import apply_rotary_pos_emb

    def fwd(hidden_states, position_embeddings=None, attention_mask=None, **kw):
        B, P, _ = hidden_states.shape
        dh = attn.head_dim
        if hasattr(attn, "qkv_proj"):
            nq, nkv = cfg.num_attention_heads * dh, cfg.num_key_value_heads * dh
            q, k, v = attn.qkv_proj(hidden_states).split([nq, nkv, nkv], dim=-1)
        else:
            q, k, v = (getattr(attn, f"{c}_proj")(hidden_states) for c in "qkv")
        all_heads = hasattr(attn, "q_norm") and attn.q_norm.weight.shape[0] != dh
        if all_heads:  # OLMo 2: the norm spans every head of a position
            q, k = attn.q_norm(q), attn.k_norm(k)
        q, k, v = (t.view(B, P, -1, dh).transpose(1, 2) for t in (q, k, v))
        if hasattr(attn, "q_norm") and not all_heads:
            q, k = attn.q_norm(q), attn.k_norm(k)
        q, k = apply_rotary_pos_emb(q, k, *position_embeddings)
        k, v = repeat_kv(k, attn.num_key_value_groups), repeat_kv(v, attn.num_key_value_groups)
        if state["src"] is None:
            state["key"] = k.clone()
        else:
            k = k.clone()
            k[:, heads] = state["src"][:, heads]
        s = (q @ k.transpose(-1, -2)) * attn.scaling
        cap = getattr(attn, "attn_logit_softcapping", None)
        if cap:
            s = torch.tanh(s / cap) * cap
        i = torch.arange(P)
        ok = i[None, :] <= i[:, None]
        window = getattr(attn, "sliding_window", None)
        if not hasattr(attn, "sliding_window"):
            window = getattr(cfg, "sliding_window", None)
        if window:
            ok = ok & (i[None, :] > i[:, None] - window)
        z = s.masked_fill(~ok, float("-inf")).softmax(-1) @ v
        return attn.o_proj(z.transpose(1, 2).reshape(B, P, -1)), None

    attn.forward = fwd
    try:
        with torch.no_grad():
            hf(_tokens(task, "corrupt"))
            state["src"] = state["key"]
            logits = hf(_tokens(task, "clean")).logits[:, -1]
    finally:
        del attn.forward
    return _logit_diff(logits, task)


@pytest.mark.parametrize("family", GQA)
def test_gqa_key_patch_changes_only_its_query_head(family, tmp_path_factory):
    model = _load(family, tmp_path_factory)
    task = _task(model)
    group = model.cfg.n_heads // model.cfg.n_key_value_heads
    assert group >= 2
    hf = _hf(family, tmp_path_factory)
    want = _hand_key_patch(hf, task, 1, [1])
    whole_group = _hand_key_patch(hf, task, 1, list(range(group)))
    site = parse_site("L1H1.k")
    every_edge = frozenset(
        (s, ("k", 1, 1)) for s in range(sender_index(Site(Kind.MLP, 0), model.dims) + 1)
    )
    conds = [
        Condition("clean", site_patches([site], "corrupt")),  # hooks
        Condition("clean", edges=EdgePlan(every_edge, "corrupt", complement=False)),  # paths
    ]
    r = Engine(model).run(task, conds, metric("logit_diff"))
    np.testing.assert_allclose(r.values[0], want, atol=1e-4)
    np.testing.assert_allclose(r.values[1], want, atol=1e-4)
    sweep = act_patch(model, task, "head_k", direction="ablate", method="incremental")
    np.testing.assert_allclose(sweep.per_example[sweep.index.index((1, 1))], want, atol=1e-4)
    # the failing case: patching the key/value head (every query head of the group) differs
    assert np.abs(whole_group - want).max() > 1e-4


# 6. causal-mi verify with edge-level claims, on every family ----------------------------------
HYP = """version: 1
name: {family}-edges
model: path:{model}
task: {{generator: repeated_tokens, n: 20, seed: 0, params: {{seq_len: 5, repeat: 3}}}}
metric: logit_diff
ablation: resample
bootstrap: 200
nodes:
  a: L0H1
  b: L1H3
  m: L0.mlp
edges:
  - embed -> a
  - embed -> b
  - a -> b.k
  - m -> b.v
  - embed -> m
  - b -> logits
  - m -> logits
claims:
  - faithfulness >= -100
  - minimality(a) >= -100
  - indirect(a -> b.k -> logits) >= -100
  - effect(b) >= -100
"""


def _verify(family: str, directory, tmp_path) -> tuple[int, dict, str]:
    import json

    from typer.testing import CliRunner

    from causal_mi.cli import app

    hyp = tmp_path / "h.yaml"
    hyp.write_text(HYP.format(family=family, model=directory))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["verify", str(hyp), "--out", str(out)])
    data = (
        json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    )
    return result.exit_code, data, result.output


@pytest.mark.parametrize(
    "family", [f if f == "llama" else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES]
)
def test_verify_with_edge_claims_runs_at_edge_level(family, tmp_path, tmp_path_factory):
    model = _load(family, tmp_path_factory)
    code, data, output = _verify(family, model.source, tmp_path)
    assert code in (0, 1), output
    assert any(k.startswith("edge(") for k in data["quantities"]), data["quantities"].keys()
    assert "node level, not by path patching" not in output + json_text(data)


def json_text(data: dict) -> str:
    import json

    return json.dumps(data)


def test_weights_are_views_of_the_models_parameters(family_model):
    """Reading the weights costs no memory: every matrix and vector shares storage with a
    parameter of the loaded model (the failing case: a copy has storage of its own)."""
    family, model = family_model
    w = extract(model.bridge)
    owned = {p.untyped_storage().data_ptr() for p in model.bridge.parameters()}
    for mod in model.bridge.modules():  # tensors the modules compute with (a bias the bridge
        for name in ("weight", "bias"):  # sets on an unbiased unembedding is not a parameter)
            if isinstance(t := getattr(mod, name, None), torch.Tensor):
                owned.add(t.untyped_storage().data_ptr())
    tensors = [w.W_E, w.W_U, *(t for t in (w.W_pos, w.b_U) if t is not None)]
    for lw in w.layers:
        tensors += [
            t for f in dataclasses.fields(lw) if isinstance(t := getattr(lw, f.name), torch.Tensor)
        ]
    assert len(tensors) >= 2 + 6 * len(w.layers)  # at least Q, K, V, O, in, out per layer
    for t in tensors:
        assert t.untyped_storage().data_ptr() in owned, (family, tuple(t.shape))
    assert w.W_E.clone().untyped_storage().data_ptr() not in owned


# 7. Falcon's new decoder architecture with several key/value groups: refused at load --------
def test_falcon_with_several_kv_groups_is_refused_in_one_sentence(tmp_path):
    """transformer_lens' bridge splits Falcon's fused query_key_value as if there were one
    key/value group, so it cannot load this model (the failing case below); causal-mi
    refuses it before booting, exit 2, one sentence naming the config file."""
    from typer.testing import CliRunner

    from causal_mi.cli import app
    from causal_mi.errors import ModelLoadError
    from causal_mi.models.loading import _boot_transformers, load_model

    d = build("falcon_groups", tmp_path / "falcon")
    with pytest.raises(ModelLoadError) as exc:
        load_model(f"path:{d}")
    message = str(exc.value).split(f"'path:{d}': ", 1)[1]
    assert message.startswith(f"{d / 'config.json'}: Falcon's new decoder architecture with 2")
    assert message.count(". ") == 0  # one sentence
    hyp = tmp_path / "h.yaml"
    hyp.write_text(HYP.format(family="falcon", model=d))
    r = CliRunner().invoke(app, ["verify", str(hyp), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "num_kv_heads > 1" in r.output, r.output
    # the failing case: the bridge itself does not load it
    with pytest.raises(RuntimeError, match="split_with_sizes"):
        _boot_transformers(str(d), "cpu")
