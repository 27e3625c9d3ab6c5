"""Models written by TransformerLens' HookedTransformer (config dict + TL-named state dict):
the loaded model computes what the weights define (a forward pass written here from the
definition, not through causal-mi), ``causal-mi verify`` on a hand-set model gives the
verdicts its construction implies, and what cannot be loaded is refused with exit 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from causal_mi.errors import ModelLoadError
from causal_mi.models.loading import load_model

WORDS = ["BOS", "a", "b", "c", "d", "e", "f"]


def tl_config(**over) -> dict:
    """A ``HookedTransformerConfig.to_dict()`` dump as exporters write it (non-JSON fields
    as strings, fields the loader ignores included)."""
    cfg = {
        "n_layers": 2,
        "d_model": 16,
        "n_ctx": 12,
        "d_head": 4,
        "model_name": "custom",
        "n_heads": 4,
        "d_mlp": 24,
        "act_fn": "relu",
        "d_vocab": len(WORDS),
        "eps": 1e-5,
        "use_attn_result": False,
        "use_attn_scale": True,
        "attn_scale": 2.0,  # sqrt(d_head), as HookedTransformerConfig fills it in
        "use_split_qkv_input": False,
        "use_local_attn": False,
        "original_architecture": None,
        "normalization_type": "LN",
        "device": "cpu",
        "attention_dir": "causal",
        "attn_only": False,
        "seed": None,
        "initializer_range": 0.1,
        "init_weights": True,
        "positional_embedding_type": "standard",
        "final_rms": False,
        "d_vocab_out": len(WORDS),
        "parallel_attn_mlp": False,
        "rotary_dim": None,
        "n_params": 1234,
        "gated_mlp": False,
        "default_prepend_bos": True,
        "dtype": "torch.float32",
        "tokenizer_prepends_bos": None,
        "n_key_value_heads": None,
        "post_embedding_ln": False,
    }
    cfg.update(over)
    return cfg


def random_state(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """TL-named parameters of ``cfg`` (shapes as HookedTransformer holds them)."""
    g = torch.Generator().manual_seed(seed)
    d, H, dh, V = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_vocab"]

    def r(*shape, s=0.5):
        return s * torch.randn(*shape, generator=g)

    sd = {"embed.W_E": r(V, d), "pos_embed.W_pos": r(cfg["n_ctx"], d)}
    for i in range(cfg["n_layers"]):
        p = f"blocks.{i}."
        sd |= {p + f"attn.W_{c}": r(H, d, dh) for c in "QKV"}
        sd |= {p + f"attn.b_{c}": r(H, dh, s=0.1) for c in "QKV"}
        sd |= {p + "attn.W_O": r(H, dh, d), p + "attn.b_O": r(d, s=0.1)}
        norms = ["ln1"] if cfg["attn_only"] else ["ln1", "ln2"]
        for ln in norms if cfg["normalization_type"] in ("LN", "RMS") else []:
            sd[p + ln + ".w"] = 1 + r(d, s=0.2)
            if cfg["normalization_type"] == "LN":
                sd[p + ln + ".b"] = r(d, s=0.2)
        if not cfg["attn_only"]:
            m = cfg["d_mlp"]
            sd |= {p + "mlp.W_in": r(d, m), p + "mlp.b_in": r(m, s=0.1)}
            sd |= {p + "mlp.W_out": r(m, d), p + "mlp.b_out": r(d, s=0.1)}
    if cfg["normalization_type"] in ("LN", "RMS"):
        sd["ln_final.w"] = 1 + r(d, s=0.2)
        if cfg["normalization_type"] == "LN":
            sd["ln_final.b"] = r(d, s=0.2)
    sd["unembed.W_U"] = r(d, V)
    sd["unembed.b_U"] = r(V, s=0.1)
    return sd


def hand_forward(sd: dict, cfg: dict, tokens: list[int]) -> torch.Tensor:
    """Logits [pos, vocab] of a HookedTransformer, written from its definition (float64)."""
    t = {k: v.double() for k, v in sd.items()}
    n = len(tokens)
    x = t["embed.W_E"][tokens] + t["pos_embed.W_pos"][:n]
    kind = cfg["normalization_type"]

    def norm(prefix: str, v: torch.Tensor) -> torch.Tensor:
        if kind is None:
            return v
        if kind in ("LN", "LNPre"):
            v = v - v.mean(-1, keepdim=True)
        v = v / torch.sqrt((v**2).mean(-1, keepdim=True) + cfg["eps"])
        if prefix + ".w" in t:
            v = v * t[prefix + ".w"]
        return v + t[prefix + ".b"] if prefix + ".b" in t else v

    act = {
        "relu": torch.relu,
        "gelu_new": lambda v: torch.nn.functional.gelu(v, approximate="tanh"),
    }[cfg["act_fn"]]
    causal = torch.ones(n, n).tril().bool()
    for i in range(cfg["n_layers"]):
        p = f"blocks.{i}."
        h = norm(p + "ln1", x)
        out = t[p + "attn.b_O"].clone().expand(n, -1)
        for head in range(cfg["n_heads"]):
            q, k, v = (h @ t[p + f"attn.W_{c}"][head] + t[p + f"attn.b_{c}"][head] for c in "QKV")
            scores = q @ k.T / math.sqrt(cfg["d_head"])
            if cfg["attention_dir"] == "causal":
                scores = scores.masked_fill(~causal, float("-inf"))
            out = out + scores.softmax(-1) @ v @ t[p + "attn.W_O"][head]
        x = x + out
        if not cfg["attn_only"]:
            hidden = act(norm(p + "ln2", x) @ t[p + "mlp.W_in"] + t[p + "mlp.b_in"])
            x = x + hidden @ t[p + "mlp.W_out"] + t[p + "mlp.b_out"]
    x = norm("ln_final", x)
    return x @ t["unembed.W_U"] + t.get("unembed.b_U", 0)


def save_tl(directory: Path, cfg: dict, sd: dict, fmt: str = "safetensors", vocab=WORDS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(directory / "model.safetensors"))
    else:
        torch.save(sd, directory / f"model.{fmt}")
    if vocab is not None:
        (directory / "vocab.json").write_text(json.dumps(vocab))
    return directory


VARIANTS = {
    # a compiled model: no norm, attention only, ReLU, the BOS written in the prompt
    "no-norm-attn-only": dict(normalization_type=None, attn_only=True),
    "layernorm-mlp-pt": dict(act_fn="gelu_new"),
    "rms-mlp": dict(normalization_type="RMS"),
    "bidirectional": dict(normalization_type=None, attn_only=True, attention_dir="bidirectional"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_equal_the_hand_written_forward(variant, tmp_path):
    cfg = tl_config(**VARIANTS[variant])
    sd = random_state(cfg)
    fmt = "pt" if variant.endswith("-pt") else "safetensors"
    m = load_model(f"path:{save_tl(tmp_path / variant, cfg, sd, fmt)}")
    ids = m.tokens.prompt("BOS a c b a c")
    assert ids == [0, 1, 3, 2, 1, 3]  # the word list's ids; nothing prepended
    with torch.no_grad():
        got = m.bridge(torch.tensor([ids]))[0].double()
    want = hand_forward(sd, cfg, ids)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)  # float32 vs float64
    # the failing case: heads' output matrices in another order compute another model
    swapped = dict(sd, **{k: v.flip(0) for k, v in sd.items() if k.endswith("attn.W_O")})
    assert (hand_forward(swapped, cfg, ids) - got).abs().max() > 1e-3


def test_engine_forward_refuses_bidirectional_attention(tmp_path):
    """Path patching's forward pass has a causal mask: a bidirectional model is refused for
    it (node patching through the bridge, which has no mask, stays available)."""
    from causal_mi.models.weights import UnsupportedArchitecture, extract

    cfg = tl_config(**VARIANTS["bidirectional"])
    m = load_model(f"path:{save_tl(tmp_path / 'bi', cfg, random_state(cfg))}")
    with pytest.raises(UnsupportedArchitecture, match="bidirectional"):
        extract(m.bridge)


def test_engine_forward_equals_hand_written_forward(tmp_path):
    from causal_mi.engine.functional import forward
    from causal_mi.models.weights import extract

    cfg = tl_config()
    sd = random_state(cfg, seed=2)
    m = load_model(f"path:{save_tl(tmp_path / 'ln', cfg, sd)}")
    ids = [0, 4, 5, 6, 4]
    with torch.no_grad():
        got = forward(extract(m.bridge), torch.tensor([ids])).logits[0].double()
    torch.testing.assert_close(got, hand_forward(sd, cfg, ids)[-1], atol=1e-4, rtol=1e-5)


# a hand-set copy circuit: L0H0 attends to the previous token and copies it to the logits --------
def copy_model(directory: Path) -> Path:
    """One attention-only layer, no norm, two heads. Residual stream: [token one-hot (V) |
    position one-hot (n_ctx) | output (V)]. L0H0: query "I am at p", key "I am at p - 1",
    value the token, output into the output block, which the unembedding reads. L0H1 reads
    random directions and writes only into the position block, which nothing reads."""
    V, n_ctx, dh = len(WORDS), 8, 8
    d = 2 * V + n_ctx
    cfg = tl_config(
        n_layers=1, d_model=d, d_head=dh, n_heads=2, n_ctx=n_ctx, attn_only=True,
        normalization_type=None, attn_scale=math.sqrt(dh),
    )  # fmt: skip
    pos, out = V, V + n_ctx
    sd = {k: torch.zeros_like(v) for k, v in random_state(cfg).items()}
    sd["embed.W_E"][:, :V] = torch.eye(V)
    sd["pos_embed.W_pos"][:, pos:out] = torch.eye(n_ctx)
    sharp = 30.0 * math.sqrt(dh)
    for p in range(n_ctx):
        sd["blocks.0.attn.W_Q"][0, pos + p, p] = sharp
        if p + 1 < dh:
            sd["blocks.0.attn.W_K"][0, pos + p, p + 1] = 1.0
    sd["blocks.0.attn.W_V"][0, :V, :V] = torch.eye(V)
    sd["blocks.0.attn.W_O"][0, :V, out:] = torch.eye(V)
    g = torch.Generator().manual_seed(1)
    for c in "QKV":
        sd[f"blocks.0.attn.W_{c}"][1] = torch.randn(d, dh, generator=g)
    sd["blocks.0.attn.W_O"][1, :, pos:out] = torch.randn(dh, n_ctx, generator=g)
    sd["unembed.W_U"][out:, :] = 10.0 * torch.eye(V)
    del sd["unembed.b_U"]  # exporters often drop it; it is zero
    save_tl(directory, cfg, sd, vocab={"tokens": WORDS, "bos_token": "BOS"})
    return directory


def _rows() -> str:
    letters = WORDS[1:5]
    rows = [
        {"clean": f"{x} {y}", "corrupt": f"{z} {y}", "answer": f" {x}", "wrong": f" {z}"}
        for x in letters
        for z in letters
        if z != x
        for y in letters
    ]
    return "\n".join(json.dumps(r) for r in rows) + "\n"


HYP = """version: 1
name: tl-copy
model: path:model
task: {{file: pairs.jsonl}}
metric: logit_diff
ablation: resample
bootstrap: 200
nodes: {{copy: {head}}}
edges: [embed -> copy, copy -> logits]
claims:
{claims}"""


def _verify(tmp_path: Path, name: str, head: str, claims: list[str]) -> tuple[int, dict]:
    from typer.testing import CliRunner

    from causal_mi.cli import app

    text = HYP.format(head=head, claims="".join(f"  - {c}\n" for c in claims))
    (tmp_path / f"{name}.yaml").write_text(text)
    out = tmp_path / f"out-{name}"
    args = ["verify", str(tmp_path / f"{name}.yaml"), "--out", str(out), "--no-dowhy"]
    r = CliRunner().invoke(app, [*args, "--no-ablation-check"])
    assert r.exit_code in (0, 1), r.output
    data = json.loads((out / "results.json").read_text())
    assert any(k.startswith("edge(") for k in data["quantities"])  # measured at edge level
    return r.exit_code, {c["text"]: c["passed"] for c in data["claims"]}


@pytest.mark.slow  # two full verifies (~25 s)
def test_verify_on_a_hand_set_tl_model_gives_the_constructed_verdicts(tmp_path):
    copy_model(tmp_path / "model")
    (tmp_path / "pairs.jsonl").write_text(_rows())
    m = load_model(f"path:{tmp_path / 'model'}")
    assert m.tokens.prompt("a b") == [0, 1, 2]  # the declared BOS is prepended
    # faithfulness at edge level (path patching on the engine's forward of the TL weights)
    true = ["faithfulness >= 0.95", "effect(copy) >= 0.95", "effect(L0H1) ~= 0 +- 0.02"]
    code, verdicts = _verify(tmp_path, "true", "L0H0", true)
    assert code == 0 and all(verdicts.values()), verdicts
    # the distractor is not the circuit: each false claim fails
    false = ["faithfulness >= 0.5", "effect(copy) >= 0.5"]
    code, verdicts = _verify(tmp_path, "false", "L0H1", false)
    assert code == 1 and not any(verdicts.values()), verdicts


# refusals ---------------------------------------------------------------------------------------
def _fails(directory: Path, *fragments: str) -> str:
    with pytest.raises(ModelLoadError) as exc:
        load_model(f"path:{directory}")
    message = str(exc.value)
    for f in fragments:
        assert f in message, message
    return message


class Payload:
    """An object a weights-only unpickler must refuse."""


def test_pickled_objects_are_refused(tmp_path):
    cfg = tl_config(attn_only=True, normalization_type=None)
    sd = random_state(cfg)
    d = save_tl(tmp_path / "m", cfg, {**sd, "extra": Payload()}, fmt="pt")
    _fails(d, str(d / "model.pt"), "weights_only=True", "never unpickles")
    # the passing case: the same file without the object loads
    save_tl(d, cfg, sd, fmt="pt")
    load_model(f"path:{d}")


@pytest.mark.parametrize(
    "over,fragment",
    [
        (dict(positional_embedding_type="rotary"), "positional_embedding_type 'rotary'"),
        (dict(gated_mlp=True), "a gated MLP"),
        (dict(parallel_attn_mlp=True), "parallel attention and MLP"),
        (dict(d_vocab_out=3), "a separate output vocabulary (d_vocab_out 3 != d_vocab 7)"),
        (dict(normalization_type="LNX"), "normalization_type 'LNX'"),
    ],
)
def test_unsupported_tl_features_are_named(over, fragment, tmp_path):
    cfg = tl_config(**over)
    d = save_tl(tmp_path / "m", cfg, random_state(tl_config()))
    _fails(d, str(d / "config.json"), fragment, "Supported: learned absolute positions")


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    cfg = tl_config()
    sd = random_state(cfg)
    d = save_tl(tmp_path / "shape", cfg, {**sd, "blocks.0.attn.W_Q": torch.zeros(2, 16, 8)})
    _fails(d, "blocks.0.attn.W_Q", "has shape (2, 16, 8), expected (4, 16, 4)")
    sd.pop("blocks.1.mlp.W_out")
    d = save_tl(tmp_path / "missing", cfg, sd)
    _fails(d, "does not match", "missing blocks.1.mlp.W_out")


def test_a_tl_model_without_vocabulary_is_refused(tmp_path):
    cfg = tl_config()
    d = save_tl(tmp_path / "m", cfg, random_state(cfg), vocab=None)
    _fails(d, "has no tokenizer", "vocab.json (a list of token strings")


def test_a_word_the_vocabulary_lacks_is_an_input_error_at_its_row(tmp_path):
    """A word-level vocabulary without an unknown token cannot read other words: the row
    is named (exit 2), not an internal error."""
    from causal_mi import pipeline
    from causal_mi.errors import InputError

    copy_model(tmp_path / "model")
    rows = '{"clean": "a b", "corrupt": "c b", "answer": " a", "wrong": " c"}\n'
    rows += '{"clean": "a zz", "corrupt": "c zz", "answer": " a", "wrong": " c"}\n'
    (tmp_path / "pairs.jsonl").write_text(rows)
    hyp = tmp_path / "h.yaml"
    hyp.write_text(HYP.format(head="L0H0", claims="  - effect(copy) >= 0.5\n"))
    with pytest.raises(InputError) as exc:
        pipeline.prepare(hyp)
    assert f"{tmp_path / 'pairs.jsonl'}:2:1: the model's tokenizer cannot read 'a zz'" in str(
        exc.value
    )
    assert ":1:1:" not in str(exc.value)  # the readable row is fine
