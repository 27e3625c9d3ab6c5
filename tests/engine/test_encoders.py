"""Encoders (BERT, RoBERTa, DistilBERT; masked-LM and sequence-classification heads):
the metric and node patches against the Hugging Face model itself, with patches applied by
hand through PyTorch hooks on the HF modules, and the CLI on hypothesis files for each.

Every model is a tiny random HF model (2 layers, d_model 32) saved with a tokenizer built
here from a small vocabulary; the references load it again with ``transformers`` alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

WORDS = [f"w{i}" for i in range(30)] + ["good", "bad", "movie", "the", "was", "film"]
LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
KINDS = ("bert-mlm", "bert-cls", "roberta-mlm", "distilbert-cls")


def _bert_tokenizer(directory: Path):
    """A WordPiece tokenizer with BERT's special tokens and [CLS] $A [SEP] post-processing."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(directory)
    return fast


def _roberta_tokenizer(directory: Path):
    """A word-level tokenizer with RoBERTa's special tokens and <s> $A </s>."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    fast.save_pretrained(directory)
    return fast


def build(kind: str, directory: Path, seed: int = 0) -> Path:
    """A tiny random encoder of ``kind`` with its tokenizer, saved to ``directory``."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForMaskedLM,
    )

    directory.mkdir(parents=True, exist_ok=True)
    tok = (_roberta_tokenizer if kind.startswith("roberta") else _bert_tokenizer)(directory)
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
    )
    labels = dict(num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    if kind == "bert-mlm":
        model = BertForMaskedLM(BertConfig(**common))
    elif kind == "bert-cls":
        model = BertForSequenceClassification(BertConfig(**common, **labels))
    elif kind == "roberta-mlm":
        model = RobertaForMaskedLM(
            RobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        )
    else:
        cfg = DistilBertConfig(
            vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
            max_position_embeddings=40, **labels,
        )  # fmt: skip
        model = DistilBertForSequenceClassification(cfg)
    with torch.no_grad():  # larger than the default init, so patches move the logits
        g = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {k: build(k, root / k) for k in KINDS}


def reference(directory: Path, *, causal: bool = False):
    """The HF model loaded by transformers alone (eager attention, eval mode); ``causal``
    loads a BERT as a decoder (a causal mask): the reference a causal engine would equal."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification

    cfg = AutoConfig.from_pretrained(directory)
    cls = (
        AutoModelForMaskedLM
        if cfg.architectures[0].endswith("ForMaskedLM")
        else AutoModelForSequenceClassification
    )
    extra = {"is_decoder": True} if causal else {}
    return cls.from_pretrained(directory, attn_implementation="eager", **extra).eval()


def _modules(hf, layer: int) -> dict[str, torch.nn.Module]:
    """The HF modules a hand patch hooks: the attention's output projection (o: its input
    holds the heads), the key projection (k), the MLP's output projection (mlp) and the
    post-attention LayerNorm, whose output is the stream between attention and MLP (mid)."""
    if hf.config.model_type == "distilbert":
        blk = hf.distilbert.transformer.layer[layer]
        att = blk.attention
        return {"o": att.out_lin, "k": att.k_lin, "mlp": blk.ffn.lin2, "mid": blk.sa_layer_norm,
                "in": blk.ffn.lin1}  # fmt: skip
    base = hf.bert if hf.config.model_type == "bert" else hf.roberta
    blk = base.encoder.layer[layer]
    att = blk.attention
    return {"o": att.output.dense, "k": att.self.key, "mlp": blk.output.dense, "mid": att.output,
            "in": blk.intermediate.dense}  # fmt: skip


def hand_patch(hf, what: str, layer: int, head: int | None, clean, corrupt, pos=None):
    """Logits of ``hf`` on ``clean`` with one activation taken from its run on ``corrupt``:
    ``o`` the head's slice of the output projection's input, ``k`` the head's slice of the key
    projection's output, ``mlp`` the MLP's output projection; at every position or ``pos``."""
    mod = _modules(hf, layer)[what]
    d = hf.config.hidden_size if hasattr(hf.config, "hidden_size") else hf.config.dim
    cols = slice(None) if head is None else slice(head * d // 4, (head + 1) * d // 4)
    rows = slice(None) if pos is None else slice(pos, pos + 1)
    saved = {}

    on_input = what in ("o", "in")  # a linear layer's input: recompute the layer

    def grab(m, args, out):
        saved["v"] = (args[0] if on_input else out).detach().clone()

    def put(m, args, out):
        x = (args[0] if on_input else out).clone()
        x[:, rows, cols] = saved["v"][:, rows, cols]
        if on_input:
            return torch.nn.functional.linear(x, m.weight, m.bias)
        return x

    with torch.no_grad():
        h = mod.register_forward_hook(grab)
        hf(input_ids=corrupt)
        h.remove()
        h = mod.register_forward_hook(put)
        out = hf(input_ids=clean).logits
        h.remove()
    return out


def rows_for(kind: str, directory: Path, n: int = 4, seed: int = 0) -> list[dict]:
    """Task rows of equal length (a mask token in masked-LM prompts), with answer and wrong
    chosen from the reference model so that clean scores above corrupt (a positive gap)."""
    hf = reference(directory)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory)
    g = torch.Generator().manual_seed(seed)
    mlm = kind.endswith("mlm")
    rows = []
    while len(rows) < n:
        w = [WORDS[int(i)] for i in torch.randint(0, 30, (5,), generator=g)]
        c = list(w)
        c[0] = WORDS[(WORDS.index(w[0]) + 1 + int(torch.randint(0, 29, (1,), generator=g))) % 30]
        if mlm:
            w[3] = c[3] = tok.mask_token
        clean, corrupt = " ".join(w), " ".join(c)
        with torch.no_grad():
            lc = hf(**tok(clean, return_tensors="pt")).logits[0]
            lr = hf(**tok(corrupt, return_tensors="pt")).logits[0]
        if mlm:
            lc, lr = lc[4, 5:], lr[4, 5:]  # content tokens at the mask position
            d = (lc - lc.mean()) - (lr - lr.mean())
            a, b = int(d.argmax()) + 5, int(d.argmin()) + 5
            names = tok.convert_ids_to_tokens([a, b])
        else:
            d = (lc[1] - lc[0]) - (lr[1] - lr[0])
            a, b = (1, 0) if d > 0 else (0, 1)
            names = [LABELS[a], LABELS[b]]
            d = d.abs()
        if float(d.max()) < 0.05:  # keep pairs whose corruption moves the metric
            continue
        rows.append({"clean": clean, "corrupt": corrupt, "answer": names[0], "wrong": names[1]})
    return rows


def write_file(tmp: Path, model: Path, rows: list[dict], body: str, name: str = "h.yaml") -> Path:
    (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp / name
    path.write_text(
        f"version: 1\nname: enc\nmodel: path:{model}\n"
        f"task: {{file: pairs.jsonl, n: {len(rows)}}}\nmetric: logit_diff\n" + body
    )
    return path


def _prepared(tmp: Path, kind: str, directory: Path, rows: list[dict] | None = None):
    from causal_mi import pipeline

    rows = rows or rows_for(kind, directory)
    return pipeline.prepare(write_file(tmp, directory, rows, "claims: []\n"))


def _read(kind: str, logits: torch.Tensor, ids: torch.Tensor, a: int, w: int) -> float:
    """logit(a) - logit(w) where the model's head reads: the mask token (masked LM) or the
    classifier's logits."""
    if kind.endswith("mlm"):
        pos = int((ids[0] == 4).nonzero())  # [MASK] / <mask> is id 4 in both vocabularies
        logits = logits[0, pos]
    else:
        logits = logits[0]
    return float(logits[a] - logits[w])


def _run(prep, sites: list[str]):
    """Our metric: clean baseline and each site patched from corrupt into clean."""
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.plan import Condition, site_patches
    from causal_mi.engine.runner import Engine
    from causal_mi.spec.sites import parse_site

    conds = [Condition("clean", site_patches([parse_site(s)], "corrupt")) for s in sites]
    return Engine(prep.model, max_rows=64).run(prep.task, conds, metric("logit_diff"))


@pytest.mark.parametrize("kind", KINDS)
def test_clean_metric_and_node_patches_equal_hand_patched_hf(tmp_path, encoders, kind):
    """(a) the clean and corrupt metrics equal the HF model's own logits where its head
    reads; (b) a head-output, an MLP, a key, a resid_mid (the normalized stream of a post-LN
    block) and an MLP-input patch each equal the HF model with the same patch applied by
    hand, to 1e-5, batched over the task (rows never interact)."""
    directory = encoders[kind]
    prep = _prepared(tmp_path, kind, directory)
    r = _run(prep, ["L1H2", "L0.mlp", "L1H1.k", "L0.resid_mid", "L1.mlp.in"])
    hf = reference(directory)
    cases = [("o", 1, 2), ("mlp", 0, None), ("k", 1, 1), ("mid", 0, None), ("in", 1, None)]
    for i, ex in enumerate(prep.task.examples):
        clean, corrupt = torch.tensor([ex.clean]), torch.tensor([ex.corrupt])
        with torch.no_grad():
            ref_clean = _read(kind, hf(input_ids=clean).logits, clean, ex.answer, ex.wrong)
            ref_corrupt = _read(kind, hf(input_ids=corrupt).logits, clean, ex.answer, ex.wrong)
        assert r.clean[i] == pytest.approx(ref_clean, abs=1e-5)
        assert r.corrupt[i] == pytest.approx(ref_corrupt, abs=1e-5)
        for c, (what, layer, head) in enumerate(cases):
            logits = hand_patch(hf, what, layer, head, clean, corrupt)
            ref = _read(kind, logits, clean, ex.answer, ex.wrong)
            assert r.values[c, i] == pytest.approx(ref, abs=1e-5), (kind, what, i)
            assert abs(ref - ref_clean) > 1e-4  # each patch changes the metric
    # a wrong reference fails: the head's patch is not the neighbouring head's
    ex = prep.task.examples[0]
    clean, corrupt = torch.tensor([ex.clean]), torch.tensor([ex.corrupt])
    other = _read(kind, hand_patch(hf, "o", 1, 3, clean, corrupt), clean, ex.answer, ex.wrong)
    assert abs(r.values[0, 0] - other) > 1e-4


def test_bidirectional_attention_later_position_moves_the_mask(tmp_path, encoders):
    """(c) an MLP patch at the position after the mask token changes the metric read at the
    mask: our effect equals the bidirectional HF model's, patched by hand, while the same
    model under a causal mask (loaded as a decoder) shows no effect there at all, so an
    engine that assumed a causal mask would have measured 0."""
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.plan import Condition, Patch
    from causal_mi.engine.runner import Engine

    kind, directory = "bert-mlm", encoders["bert-mlm"]
    rows = rows_for(kind, directory, n=2)
    for r in rows:  # [CLS] w w w [MASK] w [SEP]: differ after the mask only
        c, k = r["clean"].split(), r["corrupt"].split()
        k[:4] = c[:4]
        k[4] = "w29" if c[4] != "w29" else "w28"
        r["corrupt"] = " ".join(k)
    prep = _prepared(tmp_path, kind, directory, rows)
    later = Patch("blocks.0.hook_mlp_out", "corrupt", frozenset({(5, None)}))
    r = Engine(prep.model).run(prep.task, [Condition("clean", (later,))], metric("logit_diff"))
    hf, causal = reference(directory), reference(directory, causal=True)
    for i, ex in enumerate(prep.task.examples):
        assert ex.clean[:5] == ex.corrupt[:5] and ex.clean[5] != ex.corrupt[5]
        clean, corrupt = torch.tensor([ex.clean]), torch.tensor([ex.corrupt])
        effect = {}
        for name, model in (("bidirectional", hf), ("causal", causal)):
            with torch.no_grad():
                base = _read(kind, model(input_ids=clean).logits, clean, ex.answer, ex.wrong)
            patched = hand_patch(model, "mlp", 0, None, clean, corrupt, pos=5)
            effect[name] = _read(kind, patched, clean, ex.answer, ex.wrong) - base
        ours = r.values[0, i] - r.clean[i]
        assert ours == pytest.approx(effect["bidirectional"], abs=1e-5)
        assert abs(ours) > 1e-3
        assert effect["causal"] == 0.0  # the causal reference: nothing reaches the mask


def _verify(path: Path, out: Path):
    from typer.testing import CliRunner

    from causal_mi.cli import app

    args = ["verify", str(path), "--out", str(out), "--no-dowhy", "--no-ablation-check"]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("kind", KINDS)
def test_verify_node_claims_exit_as_constructed(tmp_path, encoders, kind):
    """(d) ``causal-mi verify`` on each encoder: patching the whole last residual stream
    restores everything and ablating it loses everything (both follow from the definition),
    so a file claiming that exits 0 and one claiming the opposite exits 1; never 3."""
    rows = rows_for(kind, encoders[kind], n=10)
    true = write_file(
        tmp_path, encoders[kind], rows,
        "nodes: {last: L1.resid_post, h: L1H0}\nclaims:\n"
        "  - restore(last) ~= 1 +- 0.01\n  - effect(last) >= 0.99\n",
        "true.yaml",
    )  # fmt: skip
    res = _verify(true, tmp_path / "out-true")
    assert res.exit_code == 0, res.output
    false = write_file(
        tmp_path, encoders[kind], rows,
        "nodes: {last: L1.resid_post}\nclaims:\n  - effect(last) <= 0.5\n", "false.yaml",
    )  # fmt: skip
    res = _verify(false, tmp_path / "out-false")
    assert res.exit_code == 1, res.output


def test_unknown_class_label_is_an_input_error(tmp_path, encoders):
    """(e) an answer that is not a class label: exit 2 at the row, naming the valid labels."""
    rows = rows_for("bert-cls", encoders["bert-cls"], n=2)
    rows[1]["answer"] = "POSTIVE"
    path = write_file(tmp_path, encoders["bert-cls"], rows, "claims:\n  - effect(L0H0) <= 1\n")
    res = _verify(path, tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert "pairs.jsonl:2" in res.output
    assert "'POSTIVE' is not a class label" in res.output
    assert "did you mean POSITIVE? valid: NEGATIVE, POSITIVE" in res.output


def test_edges_on_an_encoder_are_refused_up_front(tmp_path, encoders):
    """Edges (path patching) on an encoder: exit 2 at the edges with one sentence naming
    the missing feature; nothing is measured."""
    rows = rows_for("distilbert-cls", encoders["distilbert-cls"], n=2)
    body = "nodes: {a: L0H0, b: L1H1}\nedges:\n  - a -> b.k\nclaims:\n  - faithfulness >= 0.5\n"
    res = _verify(write_file(tmp_path, encoders["distilbert-cls"], rows, body), tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "h.yaml:8:5: edges (path patching) are not available on encoders" in res.output
    assert "does not implement post-LayerNorm encoder blocks" in res.output


def test_encoder_task_errors(tmp_path, encoders):
    """A generator on an encoder, a masked-LM prompt without its mask token, and read_at on a
    classifier are input errors (exit 2) that say what the encoder needs."""
    gen = tmp_path / "gen.yaml"
    gen.write_text(
        f"version: 1\nname: g\nmodel: path:{encoders['bert-mlm']}\n"
        "task: {generator: repeated_tokens, n: 4}\nclaims: []\n"
    )
    res = _verify(gen, tmp_path / "o1")
    assert res.exit_code == 2 and "writes next-token prompts" in res.output, res.output
    rows = rows_for("roberta-mlm", encoders["roberta-mlm"], n=2)
    rows[0]["clean"] = rows[0]["clean"].replace("<mask>", "w1")
    res = _verify(
        write_file(tmp_path, encoders["roberta-mlm"], rows, "claims: []\n"), tmp_path / "o2"
    )
    assert res.exit_code == 2 and "the clean prompt has 0 of them" in res.output, res.output
    rows = rows_for("bert-cls", encoders["bert-cls"], n=2)
    path = write_file(tmp_path, encoders["bert-cls"], rows, "claims: []\n")
    path.write_text(path.read_text().replace("n: 2}", "n: 2, read_at: END}"))
    res = _verify(path, tmp_path / "o3")
    assert res.exit_code == 2 and "cannot move a sequence classifier" in res.output, res.output


def test_classifier_head_loads_with_its_labels(encoders):
    """A BertForSequenceClassification checkpoint keeps its classifier (transformer_lens'
    bridge would boot it as BertForMaskedLM): logits per label, labels from id2label."""
    from causal_mi.models.loading import load_model

    m = load_model(f"hf:{encoders['bert-cls']}")  # hf: on a local directory, as path:
    ids = m.tokens.prompt("the movie was good")
    assert m.tokens.show(ids)[0] == "[CLS]" and m.tokens.show(ids)[-1] == "[SEP]"
    assert m.tokens.labels == {"NEGATIVE": 0, "POSITIVE": 1}
    with torch.no_grad():
        ours = m.bridge(torch.tensor([ids]))
        ref = reference(encoders["bert-cls"])(input_ids=torch.tensor([ids])).logits
    assert ours.shape == (1, 2)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["bert-cls", "bert-mlm"])
def test_integrated_gradients_on_an_encoder_are_complete(tmp_path, encoders, kind):
    """The guide's example: integrated gradients over every head of a BERT classifier (and
    a masked LM, read at the mask) add up to the exact effect of patching all heads at once
    (completeness); plain attribution, a first-order term, does not in general."""
    from causal_mi.effects.attribution import attribute_heads
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.plan import Condition, component_sites, site_patches
    from causal_mi.engine.runner import Engine
    from causal_mi.spec.sites import Kind

    prep = _prepared(tmp_path, kind, encoders[kind])
    heads = [s for s in component_sites(prep.model.dims) if s.kind is Kind.HEAD]
    cond = Condition("corrupt", site_patches(heads, "clean"))
    r = Engine(prep.model).run(prep.task, [cond], metric("logit_diff"))
    exact = float(r.values[0].mean() - r.corrupt.mean())
    ig = attribute_heads(prep.model, prep.task, steps=32)
    first = attribute_heads(prep.model, prep.task, steps=1)
    assert ig.grid.sum() == pytest.approx(exact, rel=0.02, abs=1e-3)
    assert abs(first.grid.sum() - exact) > abs(ig.grid.sum() - exact)


def test_batched_equals_one_at_a_time_on_an_encoder(tmp_path, encoders):
    """Rows of a pass never interact on an encoder either (no padding, the model's own
    all-ones mask): one row per pass gives the same values as all rows in one pass."""
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.plan import Condition, site_patches
    from causal_mi.engine.runner import Engine
    from causal_mi.spec.sites import parse_site

    prep = _prepared(tmp_path, "roberta-mlm", encoders["roberta-mlm"])
    sites = ["L0H1", "L1.mlp", "L1H3.v", "L0.mlp[7]"]
    conds = [Condition("clean", site_patches([parse_site(s)], "corrupt")) for s in sites]
    conds.append(Condition("clean", site_patches([parse_site("L0H2")], "mean")))
    fn = metric("logit_diff")
    batched = Engine(prep.model, max_rows=64).run(prep.task, conds, fn)
    single = Engine(prep.model, max_rows=1).run(prep.task, conds, fn)
    assert batched.values == pytest.approx(single.values, abs=1e-5)
    assert (abs(batched.values - batched.clean[None]) > 1e-4).any(axis=1).all()


def test_template_roles_and_special_roles_on_an_encoder(tmp_path, encoders):
    """A template's role is found through the offset mapping with [CLS] before and [SEP]
    after the text; every prompt defines CLS (position 0) and MASK (the mask token), at the
    positions the tokenizer itself gives them."""
    from transformers import AutoTokenizer

    from causal_mi import pipeline

    d = encoders["bert-mlm"]
    row = {
        "template": "the {X} was [MASK] good",
        "values": {"X": "movie"},
        "corrupt_values": {"X": "film"},
        "answer": "w1",
        "wrong": "w2",
    }
    (tmp_path / "pairs.jsonl").write_text(json.dumps(row) + "\n")
    path = tmp_path / "h.yaml"
    path.write_text(f"version: 1\nname: t\nmodel: path:{d}\ntask: {{file: pairs.jsonl}}\n")
    ex = pipeline.prepare(path).task.examples[0]
    tok = AutoTokenizer.from_pretrained(d)
    for prompt, word, ids in (("clean", "movie", ex.clean), ("corrupt", "film", ex.corrupt)):
        ref = tok(row["template"].replace("{X}", word))["input_ids"]
        assert list(ids) == ref and ref[0] == tok.cls_token_id and ref[-1] == tok.sep_token_id
        roles = ex.roles_of(prompt)
        assert roles["X"] == (ref.index(tok.convert_tokens_to_ids(word)),)
        assert roles["MASK"] == (ref.index(tok.mask_token_id),)
        assert roles["CLS"] == (0,)
    assert ex.read == "MASK"


def test_output_correct_reads_a_classifiers_logits():
    """``output: correct`` on a classifier compares the top label of its [rows, labels]
    logits with the answer (a decoder's [rows, K, vocab] logits: the last read position)."""
    import numpy as np

    from causal_mi.properties.variables import Variable, raw_values

    v = Variable("c", "output", None, "correct", -1, (0.5,), True)
    logits = torch.tensor([[0.1, 2.0], [3.0, -1.0], [0.0, 1.0]])
    got = raw_values(v, logits, torch.zeros(3, 5, dtype=torch.long), torch.tensor([1, 1, 0]), None)
    assert np.array_equal(got, [1.0, 0.0, 0.0])
    per_position = logits[:, None, :].expand(3, 2, 2)
    got = raw_values(v, per_position, torch.zeros(3, 5), torch.tensor([1, 1, 0]), None)
    assert np.array_equal(got, [1.0, 0.0, 0.0])


def test_an_encoder_without_a_supported_head_is_refused(tmp_path):
    """A bare BertModel (no head) cannot be read: exit 2 naming the two heads causal-mi
    reads, never a traceback."""
    from transformers import BertConfig, BertModel

    d = tmp_path / "bare"
    d.mkdir()
    tok = _bert_tokenizer(d)
    BertModel(
        BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                   num_attention_heads=4, intermediate_size=64)
    ).save_pretrained(d)  # fmt: skip
    (tmp_path / "pairs.jsonl").write_text(
        '{"clean": "a", "corrupt": "b", "answer": "x", "wrong": "y"}\n'
    )
    path = tmp_path / "h.yaml"
    path.write_text(f"version: 1\nname: t\nmodel: path:{d}\ntask: {{file: pairs.jsonl}}\n")
    res = _verify(path, tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "BertModel: causal-mi reads encoders with a masked-LM head" in res.output


@pytest.mark.parametrize("kind", ["bert-cls", "roberta-mlm"])
def test_init_scaffolds_an_encoder_file_that_verifies(tmp_path, encoders, kind):
    """`causal-mi init` on an encoder writes a file task at node level, reading where the
    model's head reads; with a pairs file beside it, it verifies (exit 0 or 1, never 2/3)."""
    import yaml
    from typer.testing import CliRunner

    from causal_mi.cli import app

    out = tmp_path / "h.yaml"
    r = CliRunner().invoke(app, ["init", str(out), "--model", f"path:{encoders[kind]}"])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    spec = yaml.safe_load(text)
    assert spec["task"] == {"file": "pairs.jsonl"} and "edges" not in spec
    assert ("class labels" in text) == kind.endswith("cls")
    assert ("<mask>" in text) == kind.startswith("roberta")
    rows = rows_for(kind, encoders[kind])
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    r = _verify(out, tmp_path / "out")
    assert r.exit_code in (0, 1), r.output
