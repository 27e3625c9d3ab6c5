"""Train the zoo model ``ioi-names``: a 3-layer transformer doing indirect object identification.

IOI (Wang et al. 2022): in "when mary and john went to the store john gave a drink to" the next
word is "mary", the *indirect object* (IO): of the two names introduced first, the one that is
not repeated as the subject (S) of the second clause. Solving it needs the model to find which
name is duplicated and to output the other one, which is what makes it a good ground truth.

Data: word-level sentences from ``TEMPLATES`` (varied lengths, so no absolute position solves
the task) with places and objects drawn from small lists and names from ``NAMES``. Both orders
occur: ABBA ("A and B ... B gave ... to" -> A) and BABA ("A and B ... A gave ... to" -> B).
A share ``ABC_SHARE`` of the training sentences are the ABC variant, where the second clause
names a third person and no name repeats; their target is one half on each of the two first
names, so the model learns "the first-clause name that is not repeated" rather than a shortcut
(for example "the first-clause name that is not the most recent name") and the ABC prompt,
the usual IOI corruption, gets a logit difference near 0. Loss is cross-entropy at the last
position only.

What the trained model computes (see ``models/ioi-names/MODEL.md``): several heads copy both
first-clause names to the last position, and the subject is removed by *suppressing the name
in the subject slot*: L0.mlp builds an extended embedding of the S2 name at S2, and heads
L0H3 (through L0.mlp at the last position), L1H1, L1H3, L2H2 and L2H3 attend from the last
position to S2, selected through their keys, and write against that name.

Run ``python -m causal_mi.zoo.ioi`` to regenerate the shipped model.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_NAME = "ioi-names"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL_NAME

SPECIAL_TOKENS = ("<bos>", "<unk>", "<pad>")
NAMES = (
    "mary", "john", "alice", "bob", "tom", "anna",
    "james", "emma", "david", "sarah", "paul", "lucy",
)  # fmt: skip
PLACES = ("store", "park", "house", "office", "school", "garden", "station", "market")
OBJECTS = ("drink", "ball", "book", "letter", "gift", "ring", "cake", "key")
# {a}, {b}: the two first names; {s}: the subject of the second clause; {p} place; {o} object.
TEMPLATES = (
    "when {a} and {b} went to the {p} {s} gave a {o} to",
    "then {a} and {b} were working at the {p} and {s} decided to give a {o} to",
    "after {a} and {b} went to the {p} {s} gave a {o} to",
    "while {a} and {b} were at the {p} {s} handed a {o} to",
    "{a} and {b} went to the {p} and {s} gave a {o} to",
    "friends {a} and {b} found a {o} at the {p} and {s} gave it to",
    "when {a} and {b} got a {o} at the {p} {s} decided to give it to",
    "the {p} was closed so {a} and {b} left and {s} brought a {o} to",
)


def _template_words() -> tuple[str, ...]:
    words: list[str] = []
    for t in TEMPLATES:
        for w in t.split():
            if not w.startswith("{") and w not in words:
                words.append(w)
    return tuple(words)


VOCAB = SPECIAL_TOKENS + NAMES + _template_words() + PLACES + OBJECTS

# Hyperparameters (fixed so the shipped model is reproducible from the seed alone).
N_LAYERS = 3
D_MODEL = 64
N_HEADS = 4
D_MLP = 256
N_CTX = 32
BATCH = 128
STEPS = 1200
LR = 3e-3
WEIGHT_DECAY = 0.01
WARMUP = 100  # linear warm-up steps, then cosine decay to LR / 10
ABC_SHARE = 0.25  # share of training sentences in the ABC form (no repeated name)
EVAL_SEED_OFFSET = 10_000  # held-out data uses seed + this offset


def build_tokenizer() -> Any:
    """WordLevel tokenizer over ``VOCAB``, split on whitespace, prepending ``<bos>``.

    ``name_or_path`` is required by the bridge's tokenizer setup, and ``eos_token`` reuses
    ``<bos>`` because the bridge would otherwise register a new token and grow the vocabulary
    past ``d_vocab`` (see :func:`causal_mi.zoo.induction.build_tokenizer`).
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(VOCAB)}
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


def sample_sentence(rng: random.Random) -> dict[str, Any]:
    """One IOI sentence and its ABC corruption.

    Returns ``{"clean", "corrupt", "io", "s", "c", "template"}``: ``clean`` is the IOI
    sentence (ABBA or BABA with equal chance), ``corrupt`` the same sentence with the subject
    S2 replaced by a third name ``c`` (so no name repeats), ``io`` the indirect object and
    ``s`` the subject.
    """
    t = rng.randrange(len(TEMPLATES))
    a, b, c = rng.sample(NAMES, 3)
    p, o = rng.choice(PLACES), rng.choice(OBJECTS)
    io, s = (a, b) if rng.random() < 0.5 else (b, a)
    clean = TEMPLATES[t].format(a=a, b=b, s=s, p=p, o=o)
    corrupt = TEMPLATES[t].format(a=a, b=b, s=c, p=p, o=o)
    return {"clean": clean, "corrupt": corrupt, "io": io, "s": s, "c": c, "template": t}


def write_pairs(path: Path, n: int, seed: int) -> None:
    """Write ``n`` IOI pairs as JSON Lines: clean IOI sentence, ABC corruption, IO, S.

    The corrupt prompt is the same sentence with the repeated subject replaced by a third
    name (Wang et al.'s "ABC" distribution), so both prompts have the same length and the
    corrupt one has no duplicated name; ``answer`` is the indirect object, ``wrong`` the subject.
    """
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for _ in range(n):
        ex = sample_sentence(rng)
        rec = {"clean": ex["clean"], "corrupt": ex["corrupt"], "answer": ex["io"], "wrong": ex["s"]}
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _ids(words: str) -> list[int]:
    index = {w: i for i, w in enumerate(VOCAB)}
    return [0] + [index[w] for w in words.split()]  # 0 = <bos>


def make_batch(n: int, rng: random.Random, abc_share: float = ABC_SHARE) -> tuple[Any, ...]:
    """``n`` training sentences, right-padded: ``(tokens, last, target_a, target_b, is_abc)``.

    ``last[i]`` is the index of sentence i's last token (where the loss is read; right padding
    cannot reach it through causal attention). An IOI sentence's target is all on
    ``target_a`` (the IO; ``target_b`` is then the subject, used only for the logit
    difference); an ABC sentence's target is half on each of the two first-clause names.
    """
    import torch

    index = {w: i for i, w in enumerate(VOCAB)}
    rows, ta, tb, abc = [], [], [], []
    for _ in range(n):
        ex = sample_sentence(rng)
        use_abc = rng.random() < abc_share
        rows.append(_ids(ex["corrupt"] if use_abc else ex["clean"]))
        ta.append(index[ex["io"]])
        tb.append(index[ex["s"]])
        abc.append(use_abc)
    width = max(len(r) for r in rows)
    pad = index["<pad>"]
    tokens = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    last = torch.tensor([len(r) - 1 for r in rows])
    return tokens, last, torch.tensor(ta), torch.tensor(tb), torch.tensor(abc)


def evaluate(bridge: Any, n: int, rng: random.Random) -> dict[str, float]:
    """Held-out metrics on ``n`` fresh sentences of each kind: top-1 accuracy of the IO over
    the whole vocabulary and mean logit difference IO - S on IOI sentences, and the mean logit
    difference between the two first-clause names on ABC sentences (near 0 when the model
    has no preference without a repeated name)."""
    import torch

    rows = torch.arange(n)
    tokens, last, io, s, _ = make_batch(n, rng, abc_share=0.0)
    abc_tokens, abc_last, a, b, _ = make_batch(n, rng, abc_share=1.0)
    with torch.no_grad():
        logits = bridge(tokens)[rows, last]
        abc_logits = bridge(abc_tokens)[rows, abc_last]
    return {
        "ioi_accuracy": round(float((logits.argmax(-1) == io).float().mean()), 4),
        "ioi_logit_diff": round(float((logits[rows, io] - logits[rows, s]).mean()), 3),
        "abc_logit_diff": round(float((abc_logits[rows, a] - abc_logits[rows, b]).mean()), 3),
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
    """Train ``ioi-names`` with ``seed``, save it to ``out_dir`` and return its metrics.

    Deterministic on CPU (weights from ``cfg.seed``, data from a seeded ``random.Random``, one
    thread). ``progress`` is called with ``(step, total_steps, loss)`` every 50 steps and at
    the end.
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
        d_head=D_MODEL // N_HEADS,
        n_heads=N_HEADS,
        n_layers=N_LAYERS,
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
    rows = torch.arange(BATCH)
    for step in range(1, STEPS + 1):
        tokens, last, ta, tb, abc = make_batch(BATCH, rng)
        logp = torch.log_softmax(bridge(tokens)[rows, last], dim=-1)
        la, lb = logp.gather(1, ta[:, None])[:, 0], logp.gather(1, tb[:, None])[:, 0]
        loss = torch.where(abc, -0.5 * (la + lb), -la).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_val = loss.item()
        if progress is not None and (step % 50 == 0 or step == STEPS):
            progress(step, STEPS, loss_val)
    bridge.eval()
    train_s = time.perf_counter() - t0

    metrics: dict[str, Any] = {
        **evaluate(bridge, 1000, random.Random(seed + EVAL_SEED_OFFSET)),
        "final_train_loss": round(loss_val, 4),
        "train_seconds": round(train_s, 1),
    }
    zoo = {
        "name": MODEL_NAME,
        "trainer": "causal_mi.zoo.ioi",
        "seed": seed,
        "steps": STEPS,
        "hyperparameters": {
            "batch": BATCH,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "warmup": WARMUP,
            "abc_share": ABC_SHARE,
            "names": len(NAMES),
            "templates": len(TEMPLATES),
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
