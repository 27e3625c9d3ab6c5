"""Benchmark: causal-mi's patching sweeps vs transformer_lens' get_act_patch_* functions.

Same model, same data, same process, interleaved repeats; reports median time, ratio, max
abs difference of the results, and peak RSS growth of each call.

    .venv/bin/python benchmarks/patching_sweep.py --model zoo --repeats 3
    .venv/bin/python benchmarks/patching_sweep.py --model gpt2-small --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gpt2_small_shape(directory: Path):
    """A randomly initialised model of GPT-2-small shape with a 50,257-word tokenizer."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from causal_mi.models.native_format import save_native

    vocab = {"<bos>": 0, "<unk>": 1}
    vocab.update({f"w{i}": i + 2 for i in range(50257 - 2)})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<bos>",
        eos_token="<bos>",
        unk_token="<unk>",
        name_or_path="gpt2-shape",
    )
    fast.save_pretrained(directory)
    tok = AutoTokenizer.from_pretrained(directory)
    cfg = TransformerBridgeConfig(
        d_model=768,
        d_head=64,
        n_heads=12,
        n_layers=12,
        n_ctx=64,
        d_vocab=50257,
        d_mlp=3072,
        act_fn="gelu_new",
        seed=0,
    )
    save_native(TransformerBridge.boot_native(cfg, tokenizer=tok), tok, directory)
    return f"path:{directory}"


def make_task(model, batch: int, length: int, seed: int = 0):
    from causal_mi.tasks.base import Example, Task

    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor(model.tokens.content_ids())
    exs = []
    for i in range(batch):
        c = pool[torch.randint(len(pool), (length,), generator=g)].tolist()
        x = pool[torch.randint(len(pool), (length,), generator=g)].tolist()
        a, w = pool[torch.randint(len(pool), (2,), generator=g)].tolist()
        exs.append(Example(tuple(c), tuple(x), a, w, f"random #{i}"))
    return Task("random", tuple(exs))


TL_FN = {"head_out": "get_act_patch_attn_head_out_all_pos", "resid_pre": "get_act_patch_resid_pre"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["zoo", "gpt2-small"], default="zoo")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-rows", type=int, default=256)
    args = ap.parse_args()

    import transformer_lens.patching as patching

    from causal_mi.effects.patching import act_patch
    from causal_mi.models.loading import load_model

    torch.set_grad_enabled(False)
    tmp = tempfile.TemporaryDirectory()
    ref = "zoo:induction-2l" if args.model == "zoo" else gpt2_small_shape(Path(tmp.name))
    model = load_model(ref)
    task = make_task(model, args.batch, args.length)
    clean = torch.tensor([e.clean for e in task.examples])
    corrupt = torch.tensor([e.corrupt for e in task.examples])
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])

    def tl_metric(logits):
        last = logits[:, -1]
        rows = torch.arange(len(last))
        return (last[rows, ans] - last[rows, wrong]).mean()

    print(
        f"model {args.model} ({ref}), batch {args.batch} x {args.length}, "
        f"torch threads {torch.get_num_threads()}, repeats {args.repeats}"
    )
    print(
        "| sweep | patches | transformer_lens s | causal-mi s | speed-up | max abs diff | "
        "peak RSS growth TL / ours (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    _, cache = model.bridge.run_with_cache(clean)
    for family, fn_name in TL_FN.items():
        tl_times, our_times, tl_mem, our_mem = [], [], [], []
        for _ in range(args.repeats):
            base = _rss_mib()
            _peak_reset()
            t = time.perf_counter()
            want = getattr(patching, fn_name)(model.bridge, corrupt, cache, tl_metric)
            tl_times.append(time.perf_counter() - t)
            tl_mem.append(_peak_mib() - base)
            base = _rss_mib()
            _peak_reset()
            t = time.perf_counter()
            got = act_patch(model, task, family, max_rows=args.max_rows)
            our_times.append(time.perf_counter() - t)
            our_mem.append(_peak_mib() - base)
        diff = float((torch.tensor(got.grid) - want.double()).abs().max())
        tl_s, our_s = statistics.median(tl_times), statistics.median(our_times)
        print(
            f"| {family} | {got.per_example.shape[0]} | {tl_s:.2f} | {our_s:.2f} | "
            f"{tl_s / our_s:.1f}x | {diff:.1e} | {max(tl_mem):.0f} / {max(our_mem):.0f} |"
        )


if __name__ == "__main__":
    main()
