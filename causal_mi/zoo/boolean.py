"""Train the zoo model ``boolean-logic``: a 2-layer transformer with MLPs that computes
``(a AND b) OR c``.

Prompt: ``<bos>``, then T/F assignments to the inputs a, b, c and to 0-3 distractor variables
(d-h, never read) in a random order, then ``=``; the answer is the single token ``T`` or
``F``. Example::

    <bos> a T d T h T b F c F =   ->   F        (T AND F) OR F

Because the order varies, an input's value is not at a fixed position: the model has to bind
each value to the variable named just before it (a previous-token head in layer 0), find a, b
and c among the distractors and combine their values at the last position (layer-1 heads and
MLP). Distractors are what force this: with only a, b, c in a random order (48 prompts) the
model solved the task with diffuse attention over all positions, which is a poor ground truth.
Training draws fresh random prompts every step; the loss is cross-entropy at the last position.
The circuit the trained model uses is described in ``models/boolean-logic/MODEL.md``.

Run ``python -m causal_mi.zoo.boolean`` to regenerate the shipped model.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_NAME = "boolean-logic"
MODEL_DIR = Path(__file__).resolve().parent / "models" / MODEL_NAME

SPECIAL_TOKENS = ("<bos>", "<unk>", "<pad>")
VARIABLES = ("a", "b", "c")  # the inputs of the function
DISTRACTORS = ("d", "e", "f", "g", "h")  # assigned in the prompt, never read
WORDS = (*VARIABLES, *DISTRACTORS, "T", "F", "=")

# Hyperparameters (fixed so the shipped model is reproducible from the seed alone).
D_MODEL = 64
N_HEADS = 4
D_HEAD = 16
D_MLP = 128
ACT_FN = "relu"
N_CTX = 16
MAX_DISTRACTORS = 3  # training prompts hold 0..3 distractor assignments
BATCH = 128
STEPS = 2000
LR = 3e-3
WEIGHT_DECAY = 0.1
WARMUP = 100
EVAL_SEED_OFFSET = 10_000  # held-out prompts use seed + this offset
PAIR_DISTRACTORS = 2  # distractor assignments in the verifier's pairs (12-token prompts)


def target(values: dict[str, bool]) -> bool:
    """The boolean function the model is trained on."""
    return (values["a"] and values["b"]) or values["c"]


def prompt_text(order: tuple[str, ...] | list[str], values: dict[str, bool]) -> str:
    """``"c F a T b T ="`` for ``order = (c, a, b)`` and the given values (no BOS)."""
    return " ".join(f"{v} {'T' if values[v] else 'F'}" for v in order) + " ="


def sample_prompt(rng: random.Random, n_distractors: int | None = None) -> tuple[list, dict]:
    """A random prompt: a, b, c and ``n_distractors`` distinct distractors (random count in
    0..MAX_DISTRACTORS when None), in a random order, every value uniform. Returns the order
    of the variables and their values."""
    k = rng.randint(0, MAX_DISTRACTORS) if n_distractors is None else n_distractors
    order = [*VARIABLES, *rng.sample(DISTRACTORS, k)]
    rng.shuffle(order)
    return order, {v: rng.random() < 0.5 for v in order}


def build_tokenizer() -> Any:
    """WordLevel tokenizer over ``SPECIAL_TOKENS + WORDS``, split on whitespace.

    As in :mod:`causal_mi.zoo.induction`: the tokenizer prepends ``<bos>`` itself,
    ``name_or_path`` is required by the bridge, and ``eos_token`` reuses ``<bos>`` so the
    bridge does not grow the vocabulary past ``d_vocab``.
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


def _ids(order: list[str], values: dict[str, bool]) -> list[int]:
    """Token ids of ``<bos> + prompt_text(order, values)`` (the tokenizer's vocabulary order)."""
    vocab = {w: i for i, w in enumerate(SPECIAL_TOKENS + WORDS)}
    return [0] + [vocab[w] for w in prompt_text(order, values).split()]


def make_batch(n: int, rng: random.Random, n_distractors: int | None = None) -> list:
    """``n`` random prompts grouped by length: a list of ``(tokens [m, len], answers [m])``."""
    import torch

    t_id, f_id = (len(SPECIAL_TOKENS) + WORDS.index(w) for w in ("T", "F"))
    groups: dict[int, tuple[list, list]] = {}
    for _ in range(n):
        order, values = sample_prompt(rng, n_distractors)
        ids = _ids(order, values)
        g = groups.setdefault(len(ids), ([], []))
        g[0].append(ids)
        g[1].append(t_id if target(values) else f_id)
    return [
        (torch.tensor(toks, dtype=torch.long), torch.tensor(ans, dtype=torch.long))
        for _, (toks, ans) in sorted(groups.items())
    ]


def accuracy(bridge: Any, batch: list) -> tuple[float, float]:
    """Top-1 accuracy and the smallest logit margin (right answer minus the other of T/F)
    over ``batch`` (from :func:`make_batch`)."""
    import torch

    t_id, f_id = (len(SPECIAL_TOKENS) + WORDS.index(w) for w in ("T", "F"))
    hits, total, margin = 0, 0, float("inf")
    with torch.no_grad():
        for tokens, answers in batch:
            logits = bridge(tokens)[:, -1]
            hits += int((logits.argmax(-1) == answers).sum())
            total += len(answers)
            sign = torch.where(answers == t_id, 1.0, -1.0)
            margin = min(margin, float((sign * (logits[:, t_id] - logits[:, f_id])).min()))
    return hits / total, margin


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
    """Train ``boolean-logic`` with ``seed``, save it to ``out_dir`` and return its metrics.

    AdamW on fresh random prompts every step, cross-entropy at the last position only.
    Deterministic on CPU (seeded weights and data, one thread). ``progress`` is called with
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
        act_fn=ACT_FN,
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
        batch = make_batch(BATCH, rng)
        loss = (
            sum(
                torch.nn.functional.cross_entropy(bridge(tokens)[:, -1], answers, reduction="sum")
                for tokens, answers in batch
            )
            / BATCH
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

    eval_rng = random.Random(seed + EVAL_SEED_OFFSET)
    metrics: dict[str, Any] = {}
    for k in range(MAX_DISTRACTORS + 1):
        acc, margin = accuracy(bridge, make_batch(1000, eval_rng, n_distractors=k))
        metrics[f"accuracy_{k}_distractors"] = round(acc, 4)
        metrics[f"min_margin_{k}_distractors"] = round(margin, 3)
    metrics["final_train_loss"] = round(loss_val, 6)
    metrics["train_seconds"] = round(train_s, 1)
    zoo = {
        "name": MODEL_NAME,
        "trainer": "causal_mi.zoo.boolean",
        "seed": seed,
        "steps": STEPS,
        "hyperparameters": {
            "d_model": D_MODEL,
            "n_heads": N_HEADS,
            "d_head": D_HEAD,
            "d_mlp": D_MLP,
            "act_fn": ACT_FN,
            "batch": BATCH,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "warmup": WARMUP,
            "max_distractors": MAX_DISTRACTORS,
            "function": "(a AND b) OR c",
        },
        # Wall time varies run to run; leaving it out keeps a retrained directory byte-identical.
        "metrics": {k: v for k, v in metrics.items() if k != "train_seconds"},
    }
    save_native(bridge, tok, out_dir, extra={"zoo": zoo})
    return metrics


def write_pairs(path: Path, n: int, seed: int, flip: tuple[str, ...] = VARIABLES) -> None:
    """Write ``n`` clean/corrupt pairs (JSON Lines) for the verifier.

    Each prompt assigns a, b, c and ``PAIR_DISTRACTORS`` distractors in a random order (12
    tokens with ``<bos>``). The corrupt prompt flips exactly one input value, chosen so that
    the answer changes: the flipped variable is drawn uniformly from a, b, c (so each input's
    route carries about a third of the pairs), then the values are redrawn until that variable
    decides the output (c: a AND b is false; a: b = T and c = F; b: a = T and c = F).
    Clean and corrupt share everything else, so every difference between the two runs starts
    at one position, and the answer flips with it. ``flip`` narrows the flipped variable to
    some of a, b, c (per-input task files).
    """
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        var = rng.choice(flip)
        while True:
            order, values = sample_prompt(rng, PAIR_DISTRACTORS)
            flipped = {**values, var: not values[var]}
            if target(values) != target(flipped):
                break
        answer = "T" if target(values) else "F"
        record = {
            "clean": prompt_text(order, values),
            "corrupt": prompt_text(order, flipped),
            "answer": answer,
            "wrong": "F" if answer == "T" else "T",
        }
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# The shipped task files of hypotheses/zoo/boolean-logic: name -> (seed, flipped variables).
TASK_FILES = {
    "pairs.jsonl": (0, VARIABLES),
    "pairs-ab.jsonl": (1, ("a", "b")),
    "pairs-c.jsonl": (2, ("c",)),
}
HYPOTHESES_DIR = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / MODEL_NAME


def write_task_files(directory: Path, n: int = 400) -> None:
    """Write every file of ``TASK_FILES`` into ``directory`` (``n`` pairs each)."""
    for name, (seed, flip) in TASK_FILES.items():
        write_pairs(directory / name, n, seed, flip=flip)


if __name__ == "__main__":

    def _report(step: int, total: int, loss: float) -> None:
        print(f"step {step:5d}/{total}  loss {loss:.6f}", flush=True)

    print(json.dumps(train(MODEL_DIR, seed=0, progress=_report), indent=2))
    if HYPOTHESES_DIR.is_dir():
        write_task_files(HYPOTHESES_DIR)
