"""Train the zoo model ``induction-2l``: a 2-layer attention-only transformer that does induction.

Induction ("... A B ... A -> B") is the textbook two-layer circuit: a layer-0 *previous-token
head* writes "the token before me was A" into each position, and a layer-1 *induction head*
uses that (K-composition) to attend from the current ``A`` to the token right after the earlier
``A`` and copy it. Trained as below, a tiny attention-only model learns this circuit, which
makes it a ground-truth target for the verifier: hypotheses about the previous-token and
induction heads should pass, wrong ones should fail.

Training data: ``<bos>`` + prefix + random segment ``s`` (length 4..16, distinct tokens) +
``s`` again (possibly truncated) + filler, 48 tokens in all. Prefix length and ``|s|`` vary per
sequence, so no fixed positional offset solves the task. Prefix and filler are random words with
one piece of structure, a *skip-bigram*: with probability 1/2 a word is a fixed permutation of
the word two places back. Predicting it needs the previous token, so layer 0 grows a sharp
previous-token head early. Without it (purely uniform filler; tried with several learning rates,
segment-length ranges, loss weights and positional-embedding inits) the model solved the task
with a different, smeared circuit instead: layer-0 heads averaging tokens 3-5 back, layer-1
heads with induction scores near 0, which is a poor ground truth. Loss is next-token
cross-entropy on every position, with the induction-predictable ones weighted
``REPEAT_WEIGHT`` times more.

Run ``python -m causal_mi.zoo.induction`` to regenerate the shipped model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_NAME = "induction-2l"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL_NAME

SPECIAL_TOKENS = ("<bos>", "<unk>", "<pad>")
# 64 short, distinct lowercase English words; ids 3..66 in this order.
WORDS = (
    "apple", "river", "stone", "cloud", "tiger", "bread", "chair", "light",
    "green", "house", "music", "ocean", "paper", "queen", "robot", "sugar",
    "table", "water", "zebra", "horse", "glass", "money", "night", "plant",
    "sheep", "smile", "train", "wheel", "candle", "forest", "garden", "hammer",
    "island", "jacket", "kettle", "ladder", "mirror", "needle", "orange", "pencil",
    "rabbit", "silver", "tomato", "violin", "window", "yellow", "bottle", "castle",
    "dragon", "engine", "flower", "guitar", "helmet", "jungle", "lemon", "magnet",
    "pillow", "rocket", "spoon", "tunnel", "wallet", "bridge", "circle", "desert",
)  # fmt: skip
N_SPECIAL = len(SPECIAL_TOKENS)

# Hyperparameters (fixed so the shipped model is reproducible from the seed alone).
SEQ_LEN = 48  # tokens per training sequence, including <bos>
MIN_SEG, MAX_SEG = 4, 16  # length range of the repeated segment
BATCH = 64
STEPS = 2000
LR = 3e-3
WEIGHT_DECAY = 0.01
WARMUP = 100  # linear warm-up steps, then cosine decay to LR / 10
REPEAT_WEIGHT = 5.0  # loss weight of induction-predictable positions (others weigh 1)
SKIP_P = 0.5  # chance that a prefix/filler word is SKIP_PERM of the word two places back
SKIP_PERM_SEED = 1234  # fixes the skip-bigram permutation (part of the data, not the run)
EVAL_SEED_OFFSET = 10_000  # held-out data uses seed + this offset


def build_tokenizer() -> Any:
    """WordLevel tokenizer over ``SPECIAL_TOKENS + WORDS``, split on whitespace.

    ``add_bos_token=True`` makes the tokenizer itself prepend ``<bos>`` (the bridge then keeps
    it as-is instead of re-loading it by name), ``name_or_path`` is required by the bridge's
    tokenizer setup, and ``eos_token`` reuses ``<bos>`` (GPT-2 style) because the bridge would
    otherwise register a new ``<|endoftext|>`` token and grow the vocabulary past ``d_vocab``.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL_TOKENS + WORDS)}
    core = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<bos>",
        unk_token="<unk>",
        pad_token="<pad>",
        add_bos_token=True,
        name_or_path=MODEL_NAME,
    )


def make_batch(n: int, gen: Any, skip_p: float = SKIP_P) -> tuple[Any, Any, Any]:
    """Sample ``n`` repeated-segment sequences of length ``SEQ_LEN``.

    Returns ``(tokens [n, SEQ_LEN], mask [n, SEQ_LEN], seg_len [n])``. ``mask[b, i]`` is True
    when position ``i`` lies in the second copy of ``s`` past its first token, i.e. when token
    ``i`` is predictable by induction from position ``i - 1`` (whose earlier occurrence sits at
    ``i - 1 - seg_len``). Prefix and filler are uniform words, made skip-bigram with chance
    ``skip_p`` (``skip_p=0`` gives plain repeated random tokens); they repeat words by chance,
    so "first duplicated word" does not mark where the copy starts.
    """
    import torch

    n_words = len(WORDS)
    tokens = torch.randint(N_SPECIAL, N_SPECIAL + n_words, (n, SEQ_LEN), generator=gen)
    if skip_p > 0:
        perm = torch.randperm(n_words, generator=torch.Generator().manual_seed(SKIP_PERM_SEED))
        use = torch.rand(n, SEQ_LEN, generator=gen) < skip_p
        for i in range(3, SEQ_LEN):
            skipped = perm[tokens[:, i - 2] - N_SPECIAL] + N_SPECIAL
            tokens[:, i] = torch.where(use[:, i], skipped, tokens[:, i])
    tokens[:, 0] = 0  # <bos>
    mask = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
    seg_lens = torch.randint(MIN_SEG, MAX_SEG + 1, (n,), generator=gen)
    for b in range(n):
        seg_len = int(seg_lens[b])
        # The second copy keeps at least MIN_SEG tokens; the prefix takes what is left.
        prefix = int(torch.randint(0, SEQ_LEN - seg_len - MIN_SEG, (1,), generator=gen))
        seg = torch.randperm(n_words, generator=gen)[:seg_len] + N_SPECIAL
        start2 = 1 + prefix + seg_len
        copy_len = min(seg_len, SEQ_LEN - start2)
        tokens[b, 1 + prefix : start2] = seg
        tokens[b, start2 : start2 + copy_len] = seg[:copy_len]
        mask[b, start2 + 1 : start2 + copy_len] = True
    return tokens, mask, seg_lens


def repeat_accuracy(bridge: Any, tokens: Any, mask: Any) -> float:
    """Top-1 accuracy of predicting ``tokens[:, i]`` from logits at ``i - 1`` where ``mask``."""
    import torch

    with torch.no_grad():
        pred = bridge(tokens).argmax(-1)
    hit = pred[:, :-1] == tokens[:, 1:]
    return float(hit[mask[:, 1:]].float().mean())


def task_accuracy(bridge: Any, n: int, gen: Any, seg_len: int = 8) -> float:
    """Accuracy on the verifier's prompt format: ``<bos> s s[:k]`` -> ``s[k]``, k in 2..7."""
    import torch

    hits = 0
    with torch.no_grad():
        for k in range(2, seg_len):
            seg = torch.stack(
                [torch.randperm(len(WORDS), generator=gen)[:seg_len] for _ in range(n)]
            )
            seg = seg + N_SPECIAL
            bos = torch.zeros(n, 1, dtype=torch.long)
            prompt = torch.cat([bos, seg, seg[:, :k]], dim=1)
            pred = bridge(prompt)[:, -1].argmax(-1)
            hits += int((pred == seg[:, k]).sum())
    return hits / (n * (seg_len - 2))


def head_scores(bridge: Any, tokens: Any, mask: Any, seg_lens: Any) -> dict[str, list[float]]:
    """Previous-token score per layer-0 head and induction score per layer-1 head.

    Previous-token score: mean attention from position ``i`` to ``i - 1`` over all ``i >= 1``.
    Induction score: mean attention from each second-copy query ``q`` whose next token is
    in the copy to key ``q - seg_len + 1``, the token right after the earlier occurrence of
    the current token (the standard repeated-random-tokens induction score).
    """
    import torch

    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    p0 = cache["blocks.0.attn.hook_pattern"]  # [batch, head, query, key]
    p1 = cache["blocks.1.attn.hook_pattern"]
    prev = p0.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))
    query = torch.zeros_like(mask)
    query[:, :-1] = mask[:, 1:]
    pos = torch.arange(tokens.shape[1])
    key = (pos[None, :] - seg_lens[:, None] + 1).clamp(min=0)  # [batch, query]
    picked = p1.gather(-1, key[:, None, :, None].expand(-1, p1.shape[1], -1, 1))[..., 0]
    induction = (picked * query[:, None, :]).sum(dim=(0, 2)) / query.sum()
    return {
        "prev_token_score_l0": [round(float(x), 4) for x in prev],
        "induction_score_l1": [round(float(x), 4) for x in induction],
    }


def _lr_factor(step: int) -> float:
    """Linear warm-up over ``WARMUP`` steps, then cosine decay to 10% of ``LR``."""
    if step < WARMUP:
        return (step + 1) / WARMUP
    frac = (step - WARMUP) / max(1, STEPS - WARMUP)
    return 0.1 + 0.45 * (1.0 + math.cos(math.pi * frac))


def train(
    out_dir: Path,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train ``induction-2l`` with ``seed``, save it to ``out_dir`` and return its metrics.

    Deterministic on CPU: weights come from ``cfg.seed``, data from a seeded generator, and the
    thread count is pinned so reductions run in the same order. ``progress`` is called with
    ``(step, total_steps, loss)`` every 50 steps and at the end.
    """
    import torch
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    from causal_mi.models.native_format import save_native

    t0 = time.perf_counter()
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    tok = build_tokenizer()
    cfg = TransformerBridgeConfig(
        d_model=64,
        d_head=16,
        n_heads=4,
        n_layers=2,
        n_ctx=64,
        d_vocab=len(tok),
        attn_only=True,
        normalization_type="LN",
        seed=seed,
    )
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tok)
    opt = torch.optim.AdamW(bridge.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor)
    gen = torch.Generator().manual_seed(seed)
    bridge.train()
    loss_val = float("nan")
    for step in range(1, STEPS + 1):
        tokens, mask, _ = make_batch(BATCH, gen)
        logits = bridge(tokens)[:, :-1]
        per_tok = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), tokens[:, 1:], reduction="none"
        )
        weight = 1.0 + (REPEAT_WEIGHT - 1.0) * mask[:, 1:].float()
        loss = (per_tok * weight).sum() / weight.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_val = loss.item()
        if progress is not None and (step % 50 == 0 or step == STEPS):
            progress(step, STEPS, loss_val)
    bridge.eval()
    train_s = time.perf_counter() - t0

    eval_gen = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    ev_tokens, ev_mask, _ = make_batch(512, eval_gen)
    plain_tokens, plain_mask, plain_lens = make_batch(512, eval_gen, skip_p=0.0)
    metrics: dict[str, Any] = {
        "repeat_accuracy": round(repeat_accuracy(bridge, ev_tokens, ev_mask), 4),
        "repeat_accuracy_plain": round(repeat_accuracy(bridge, plain_tokens, plain_mask), 4),
        "task_accuracy_seg8": round(task_accuracy(bridge, 200, eval_gen), 4),
        **head_scores(bridge, plain_tokens[:256], plain_mask[:256], plain_lens[:256]),
        "final_train_loss": round(loss_val, 4),
        "train_seconds": round(train_s, 1),
    }
    zoo = {
        "name": MODEL_NAME,
        "trainer": "causal_mi.zoo.induction",
        "seed": seed,
        "steps": STEPS,
        "hyperparameters": {
            "batch": BATCH,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "warmup": WARMUP,
            "seq_len": SEQ_LEN,
            "seg_len": [MIN_SEG, MAX_SEG],
            "repeat_weight": REPEAT_WEIGHT,
            "skip_bigram_p": SKIP_P,
            "skip_perm_seed": SKIP_PERM_SEED,
        },
        # Wall time varies run to run; leaving it out keeps a retrained directory byte-identical.
        "metrics": {k: v for k, v in metrics.items() if k != "train_seconds"},
    }
    save_native(bridge, tok, out_dir, extra={"zoo": zoo})
    return metrics


if __name__ == "__main__":
    import json

    def _report(step: int, total: int, loss: float) -> None:
        print(f"step {step:5d}/{total}  loss {loss:.4f}", flush=True)

    print(json.dumps(train(MODEL_DIR, seed=0, progress=_report), indent=2))
