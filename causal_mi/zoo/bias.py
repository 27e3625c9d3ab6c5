"""Train the zoo model ``occupation-bias``: an occupation shifts the probability of a pronoun.

A synthetic version of the occupation/pronoun setting of Vig et al. (2020), "Causal mediation
analysis for interpreting neural NLP: the case of gender bias". Sentences follow templates
such as ``yesterday the old nurse told me that`` and continue with ``she`` or ``he``; the data
generator draws the pronoun with an occupation-dependent probability ``P_SHE[occupation]`` (ten
occupations, from 0.10 to 0.90), independent of the template. A model trained by next-token
cross-entropy on these sentences learns that probability, i.e. it learns the bias as a
calibrated prediction, not as a rule.

The occupation sits at a varying position (prefixes of 0-2 words, an optional adjective, and
verb phrases of 2-3 words), so the model has to *find* the occupation by content and move its
information to the last position. That move is the mediator a bias study looks for.

``write_pairs`` writes the verifier's task file: the clean prompt uses a female-stereotyped
occupation (``P_SHE > 0.5``), the corrupt prompt the same template with a male-stereotyped one;
``answer`` is ``she`` and ``wrong`` is ``he``, so ``logit_diff`` measures the total effect of
the occupation on the pronoun.

Run ``python -m causal_mi.zoo.bias`` to regenerate the shipped model and pairs file.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_NAME = "occupation-bias"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL_NAME
PAIRS_FILE = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / MODEL_NAME / "pairs.jsonl"

SPECIAL_TOKENS = ("<bos>", "<unk>", "<pad>")
PAD_ID = SPECIAL_TOKENS.index("<pad>")

# The generator's bias: p(next word is "she" | occupation). Synthetic numbers, not statistics
# of any real corpus; five female-stereotyped (> 0.5) and five male-stereotyped (< 0.5).
P_SHE = {
    "nurse": 0.90,
    "secretary": 0.82,
    "dancer": 0.74,
    "teacher": 0.66,
    "cashier": 0.58,
    "doctor": 0.42,
    "lawyer": 0.34,
    "farmer": 0.26,
    "mechanic": 0.18,
    "carpenter": 0.10,
}
OCCUPATIONS = tuple(P_SHE)
FEMALE = tuple(o for o in OCCUPATIONS if P_SHE[o] > 0.5)
MALE = tuple(o for o in OCCUPATIONS if P_SHE[o] < 0.5)

# Template pieces: [prefix] the [adjective] OCCUPATION verb-phrase -> pronoun continuation.
PREFIXES = ("", "yesterday", "this morning", "at work", "after lunch", "last week")
ADJECTIVES = ("", "old", "new", "young", "local")
VERB_PHRASES = ("said that", "told me that", "thinks that", "told us that")
PRONOUNS = ("she", "he")
CONTINUATIONS = ("was late", "is busy", "felt tired", "left early", "would help")

# Hyperparameters (fixed so the shipped model is reproducible from the seed alone).
D_MODEL, N_HEADS, D_HEAD, D_MLP = 64, 4, 16, 256
N_CTX = 16  # positional embeddings; the longest training sentence has 12 tokens
BATCH = 128
STEPS = 2000
LR = 3e-3
WEIGHT_DECAY = 0.01
WARMUP = 100  # linear warm-up steps, then cosine decay to LR / 10
EVAL_SEED_OFFSET = 10_000  # held-out data uses seed + this offset


def _words() -> tuple[str, ...]:
    pieces = [*PREFIXES, "the", *ADJECTIVES, *OCCUPATIONS, *VERB_PHRASES, *PRONOUNS]
    pieces += CONTINUATIONS
    seen: dict[str, None] = {}
    for piece in pieces:
        for w in piece.split():
            seen.setdefault(w, None)
    return tuple(seen)


WORDS = _words()


def templates() -> list[tuple[str, str, str]]:
    """Every ``(prefix, adjective, verb phrase)`` combination, in a fixed order."""
    return list(itertools.product(PREFIXES, ADJECTIVES, VERB_PHRASES))


def prompt(occupation: str, template: tuple[str, str, str]) -> str:
    """The text before the pronoun, e.g. ``yesterday the old nurse told me that``."""
    prefix, adjective, verb = template
    return " ".join(w for w in (prefix, "the", adjective, occupation, verb) if w)


def build_tokenizer() -> Any:
    """WordLevel tokenizer over ``SPECIAL_TOKENS + WORDS``, split on whitespace.

    As for ``induction-2l``: ``add_bos_token=True`` makes the tokenizer prepend ``<bos>``,
    ``name_or_path`` is required by the bridge's tokenizer setup, and ``eos_token`` reuses
    ``<bos>`` so the bridge does not grow the vocabulary past ``d_vocab``.
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


def _ids(text: str) -> list[int]:
    index = {w: i for i, w in enumerate(SPECIAL_TOKENS + WORDS)}
    return [index[w] for w in text.split()]


def make_batch(n: int, rng: random.Random) -> Any:
    """``n`` training sentences, ``<bos>``-prefixed and right-padded with ``<pad>`` to the
    longest: a random template and occupation, the pronoun drawn with ``P_SHE``, then a random
    two-word continuation. Returns a ``[n, length]`` long tensor."""
    import torch

    combos = templates()
    rows = []
    for _ in range(n):
        occupation = rng.choice(OCCUPATIONS)
        text = prompt(occupation, rng.choice(combos))
        pronoun = "she" if rng.random() < P_SHE[occupation] else "he"
        ids = [0, *_ids(f"{text} {pronoun} {rng.choice(CONTINUATIONS)}")]
        rows.append(ids)
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.long)


def pronoun_probs(bridge: Any) -> dict[str, dict[str, float]]:
    """The model's pronoun prediction per occupation, averaged over every template.

    ``p_she``: softmax probability of ``she``; ``p_she_given_pronoun``: ``p(she) / (p(she) +
    p(he))``; ``logit_diff``: mean ``logit(she) - logit(he)``; ``pronoun_mass``: ``p(she) +
    p(he)``.
    """
    import torch

    she, he = _ids("she")[0], _ids("he")[0]
    out: dict[str, dict[str, float]] = {}
    combos = templates()
    with torch.no_grad():
        for occupation in OCCUPATIONS:
            by_len: dict[int, list[list[int]]] = {}
            for t in combos:
                ids = [0, *_ids(prompt(occupation, t))]
                by_len.setdefault(len(ids), []).append(ids)
            p_she, p_he, diff = [], [], []
            for rows in by_len.values():
                logits = bridge(torch.tensor(rows))[:, -1]
                probs = logits.softmax(-1)
                p_she.append(probs[:, she])
                p_he.append(probs[:, he])
                diff.append(logits[:, she] - logits[:, he])
            ps, ph, d = torch.cat(p_she), torch.cat(p_he), torch.cat(diff)
            out[occupation] = {
                "p_she": round(float(ps.mean()), 4),
                "p_she_given_pronoun": round(float((ps / (ps + ph)).mean()), 4),
                "logit_diff": round(float(d.mean()), 4),
                "pronoun_mass": round(float((ps + ph).mean()), 4),
            }
    return out


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def pearson(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return cov / math.sqrt(vx * vy)


def spearman(xs: list[float], ys: list[float]) -> float:
    return pearson(_ranks(xs), _ranks(ys))


def bias_metrics(probs: dict[str, dict[str, float]]) -> dict[str, float]:
    """How well the model's ``p(she)`` tracks the generator's, over the ten occupations."""
    truth = [P_SHE[o] for o in OCCUPATIONS]
    model = [probs[o]["p_she_given_pronoun"] for o in OCCUPATIONS]
    return {
        "pearson_p_she": round(pearson(model, truth), 4),
        "spearman_p_she": round(spearman(model, truth), 4),
        "max_abs_error_p_she": round(max(abs(m - t) for m, t in zip(model, truth, strict=True)), 4),
        "min_pronoun_mass": round(min(probs[o]["pronoun_mass"] for o in OCCUPATIONS), 4),
    }


def write_pairs(path: Path, n: int, seed: int) -> None:
    """Write ``n`` clean/corrupt pairs as JSON Lines to ``path``.

    Each line takes a random template; the clean prompt has a female-stereotyped occupation and
    the corrupt prompt the same template with a male-stereotyped one (all occupations are single
    words, so both prompts have the same length). ``answer`` is ``she``, ``wrong`` is ``he``.
    """
    rng = random.Random(seed)
    combos = templates()
    lines = []
    for _ in range(n):
        t = rng.choice(combos)
        record = {
            "clean": prompt(rng.choice(FEMALE), t),
            "corrupt": prompt(rng.choice(MALE), t),
            "answer": "she",
            "wrong": "he",
        }
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


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
    """Train ``occupation-bias`` with ``seed``, save it to ``out_dir`` and return its metrics.

    Deterministic on CPU: weights come from ``cfg.seed``, data from a seeded ``random.Random``,
    and one thread keeps reductions in the same order. ``progress`` is called with
    ``(step, total_steps, loss)`` every 50 steps and at the end.
    """
    import torch
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    from causal_mi.models.native_format import save_native

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    tok = build_tokenizer()
    cfg = TransformerBridgeConfig(
        d_model=D_MODEL,
        d_head=D_HEAD,
        n_heads=N_HEADS,
        n_layers=2,
        n_ctx=N_CTX,
        d_vocab=len(tok),
        d_mlp=D_MLP,
        act_fn="gelu",
        attn_only=False,
        normalization_type="LN",
        seed=seed,
    )
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tok)
    opt = torch.optim.AdamW(bridge.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor)
    rng = random.Random(seed)
    bridge.train()
    loss_val = float("nan")
    for step in range(1, STEPS + 1):
        tokens = make_batch(BATCH, rng)
        logits = bridge(tokens)[:, :-1]
        target = tokens[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), target, ignore_index=PAD_ID
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_val = loss.item()
        if progress is not None and (step % 50 == 0 or step == STEPS):
            progress(step, STEPS, loss_val)
    bridge.eval()
    train_s = time.perf_counter() - t0

    probs = pronoun_probs(bridge)
    metrics: dict[str, Any] = {
        **bias_metrics(probs),
        "per_occupation": {o: {"data_p_she": P_SHE[o], **probs[o]} for o in OCCUPATIONS},
        "final_train_loss": round(loss_val, 4),
        "train_seconds": round(train_s, 1),
    }
    zoo = {
        "name": MODEL_NAME,
        "trainer": "causal_mi.zoo.bias",
        "seed": seed,
        "steps": STEPS,
        "hyperparameters": {
            "batch": BATCH,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "warmup": WARMUP,
            "p_she": P_SHE,
            "prefixes": list(PREFIXES),
            "adjectives": list(ADJECTIVES),
            "verb_phrases": list(VERB_PHRASES),
            "continuations": list(CONTINUATIONS),
        },
        # Wall time varies run to run; leaving it out keeps a retrained directory byte-identical.
        "metrics": {k: v for k, v in metrics.items() if k != "train_seconds"},
    }
    save_native(bridge, tok, out_dir, extra={"zoo": zoo})
    return metrics


if __name__ == "__main__":

    def _report(step: int, total: int, loss: float) -> None:
        print(f"step {step:5d}/{total}  loss {loss:.4f}", flush=True)

    print(json.dumps(train(MODEL_DIR, seed=0, progress=_report), indent=2))
    write_pairs(PAIRS_FILE, 400, seed=0)
