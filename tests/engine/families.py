"""Tiny randomly initialised Hugging Face models, one per architecture family, whose configs
exercise the family's features (grouped key/value heads with a group of 2, partial rotary,
a sliding window shorter than the test prompts, soft-capping, Llama 3 rope scaling, ...).

``build(family, directory)`` saves the model and a tokenizer to ``directory``, the way a user
brings a checkpoint (``model: path:<dir>``).
"""

from __future__ import annotations

from pathlib import Path

import torch

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
IDS = dict(bos_token_id=0, eos_token_id=0, pad_token_id=2, max_position_embeddings=64)
WINDOW = 4  # shorter than every test prompt


def _config(family: str, vocab: int):
    import transformers as tf

    common = dict(vocab_size=vocab, **SMALL, **IDS)
    if family == "llama":
        rope = {
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8,
        }
        return tf.LlamaConfig(
            **common, num_key_value_heads=2, rope_parameters=rope, attention_bias=True
        )
    if family == "mistral":
        return tf.MistralConfig(**common, num_key_value_heads=2, sliding_window=WINDOW)
    if family == "qwen2":
        return tf.Qwen2Config(
            **common,
            num_key_value_heads=2,
            use_sliding_window=True,
            sliding_window=WINDOW,
            max_window_layers=1,
        )
    if family == "qwen3":
        return tf.Qwen3Config(**common, num_key_value_heads=2, head_dim=8)
    if family == "gemma":  # multi-query: one key/value head
        return tf.GemmaConfig(**common, num_key_value_heads=1, head_dim=8)
    if family == "gemma2":
        return tf.Gemma2Config(
            **common,
            num_key_value_heads=2,
            head_dim=8,
            sliding_window=WINDOW,
            attn_logit_softcapping=0.5,
            final_logit_softcapping=3.0,
            query_pre_attn_scalar=6,
        )
    if family == "gemma3_text":
        return tf.Gemma3TextConfig(
            **common,
            num_key_value_heads=2,
            head_dim=8,
            sliding_window=WINDOW,
            layer_types=["sliding_attention", "full_attention"],
            query_pre_attn_scalar=6,
        )
    if family == "olmo2":
        return tf.Olmo2Config(**common, num_key_value_heads=2)
    if family == "phi3":
        return tf.Phi3Config(**common, num_key_value_heads=4, partial_rotary_factor=0.5)
    if family == "phi3_gqa":  # Phi-3 with grouped-query attention (fused qkv_proj)
        return tf.Phi3Config(**common, num_key_value_heads=2, partial_rotary_factor=0.5)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(
            vocab_size=vocab,
            **SMALL,
            **IDS,
            rotary_pct=0.5,
            use_parallel_residual=True,
            tie_word_embeddings=False,
        )
    gpt = dict(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    gpt.update(bos_token_id=0, eos_token_id=0)
    if family == "gptj":
        return tf.GPTJConfig(**gpt, rotary_dim=4, n_inner=64, tie_word_embeddings=False)
    if family == "gpt_neo":
        return tf.GPTNeoConfig(
            vocab_size=vocab,
            max_position_embeddings=64,
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            intermediate_size=64,
            attention_types=[[["local", "global"], 1]],
            window_size=WINDOW,
            bos_token_id=0,
            eos_token_id=0,
        )
    if family == "opt":
        return tf.OPTConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            ffn_dim=64,
            num_attention_heads=4,
            max_position_embeddings=64,
            word_embed_proj_dim=32,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=2,
        )
    if family == "gpt_bigcode":
        return tf.GPTBigCodeConfig(**gpt, n_inner=64, multi_query=True)
    if family == "bloom":
        return tf.BloomConfig(
            vocab_size=vocab, hidden_size=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0
        )
    falcon = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    falcon.update(bos_token_id=0, eos_token_id=0, bias=True)
    if (
        family == "falcon"
    ):  # the new decoder architecture (the bridge loads one kv group), two norms
        return tf.FalconConfig(
            **falcon, new_decoder_architecture=True, num_kv_heads=1, num_ln_in_parallel_attn=2
        )
    if family == "falcon_mq":  # the first layout: multi-query, one shared norm
        return tf.FalconConfig(**falcon, multi_query=True, parallel_attn=True)
    if family == "falcon_groups":  # new decoder architecture, 2 kv groups: refused at load
        return tf.FalconConfig(
            **falcon, new_decoder_architecture=True, num_kv_heads=2, num_ln_in_parallel_attn=2
        )
    raise ValueError(family)


FAMILIES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "olmo2",
    "phi3",
    "phi3_gqa",
    "gpt_neox",
    "gptj",
    "gpt_neo",
    "opt",
    "gpt_bigcode",
    "bloom",
    "falcon",
    "falcon_mq",
)


def build(family: str, directory: Path, seed: int = 0) -> Path:
    """A random ``family`` model (weights scaled up so patches move the logits) and its
    tokenizer saved in ``directory``."""
    from transformers import AutoModelForCausalLM

    from tests.conftest import make_tokenizer

    tok = make_tokenizer(directory)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(family, len(tok))).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.mul_(3.0)
            elif "norm" in name or "layernorm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
