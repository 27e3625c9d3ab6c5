"""Benchmark: causal-mi's patching sweeps vs transformer_lens' get_act_patch_* functions.

Same model, same data, same process, interleaved repeats; reports median time, ratio, max
abs difference of the results, peak memory growth of one call (each measured alone in a
fresh process, so neither side reuses memory the other freed), and the fraction of the FLOP
bound causal-mi reached (the arithmetic its reduced computation needs, divided by its time
and by this machine's measured matrix-product throughput). Both sides are timed end to end
from tokens: transformer_lens' time includes the clean ``run_with_cache`` its patching
functions need, causal-mi's its two recorded runs.

    .venv/bin/python benchmarks/patching_sweep.py --model zoo --repeats 3
    .venv/bin/python benchmarks/patching_sweep.py --model gpt2-small --repeats 1
    .venv/bin/python benchmarks/patching_sweep.py --model llama-shape --repeats 5
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


def llama_shape(directory: Path):
    """A randomly initialised Llama-shaped HF model (rotary, grouped-query attention 4:1,
    SwiGLU, RMSNorm; 12 layers, d_model 768, 12 query / 3 key-value heads, d_mlp 2048,
    32,000 words: about 123M parameters) with a word-level tokenizer, saved as an HF dir."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1}
    vocab.update({f"w{i}": i + 2 for i in range(32000 - 2)})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<bos>", unk_token="<unk>"
    )
    fast.save_pretrained(directory)
    cfg = LlamaConfig(
        vocab_size=32000,
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=12,
        num_key_value_heads=3,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).eval().save_pretrained(directory)
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


def matmul_peak(seconds: float = 1.0) -> float:
    """Measured fp32 matrix-product throughput of this machine (FLOP/s), best of a few."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024**3 / (time.perf_counter() - t))
    return best


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _setup(args):
    """(model, task, TL sweep, our sweep) for ``args``."""
    import transformer_lens.patching as patching

    from causal_mi.effects.patching import act_patch
    from causal_mi.models.loading import load_model

    torch.set_grad_enabled(False)
    model = load_model(args.ref, device=args.device)
    task = make_task(model, args.batch, args.length)
    dev = args.device
    clean = torch.tensor([e.clean for e in task.examples], device=dev)
    corrupt = torch.tensor([e.corrupt for e in task.examples], device=dev)
    ans = torch.tensor([e.answer for e in task.examples], device=dev)
    wrong = torch.tensor([e.wrong for e in task.examples], device=dev)

    def tl_metric(logits):
        last = logits[:, -1]
        rows = torch.arange(len(last), device=last.device)
        return (last[rows, ans] - last[rows, wrong]).mean()

    def tl_sweep(family):
        _, cache = model.bridge.run_with_cache(clean)  # the clean cache a TL user runs first
        return getattr(patching, TL_FN[family])(model.bridge, corrupt, cache, tl_metric)

    def ours(family):
        return act_patch(model, task, family, max_memory=args.max_memory * 2**20)

    return model, tl_sweep, ours


def _memory_probe(args) -> None:
    """In a fresh process: peak memory growth of one call (RSS on CPU, allocator on GPU)."""
    _, tl_sweep, ours = _setup(args)
    fn = tl_sweep if args.memory_probe == "tl" else ours
    if args.device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn(args.families)
        print((torch.cuda.max_memory_allocated() - base) / 2**20)
        return
    base = _rss_mib()
    _peak_reset()
    fn(args.families)
    print(_peak_mib() - base)


def _probe(args, impl: str, family: str) -> float:
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--ref", args.ref, "--batch", str(args.batch)]
    cmd += ["--length", str(args.length), "--device", args.device, "--families", family]
    cmd += ["--max-memory", str(args.max_memory), "--memory-probe", impl]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["zoo", "gpt2-small", "llama-shape"], default="zoo")
    ap.add_argument("--ref", help=argparse.SUPPRESS)  # set for the memory probes
    ap.add_argument("--memory-probe", choices=["tl", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--families", default="head_out,resid_pre")
    ap.add_argument("--max-memory", type=int, default=64, help="MiB for causal-mi's sweeps")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.memory_probe:
        return _memory_probe(args)

    tmp = tempfile.TemporaryDirectory()
    make = {"gpt2-small": gpt2_small_shape, "llama-shape": llama_shape}
    args.ref = "zoo:induction-2l" if args.model == "zoo" else make[args.model](Path(tmp.name))
    model, tl_sweep, ours = _setup(args)
    dev = args.device
    families = args.families.split(",")
    peak = matmul_peak() if dev == "cpu" else float("nan")
    ours(families[0])  # warm-up: weight views, lazy imports
    tl_sweep(families[0])
    print(
        f"model {args.model} ({args.ref}), batch {args.batch} x {args.length}, device {dev}, "
        f"torch threads {torch.get_num_threads()}, repeats {args.repeats}, "
        f"matmul peak {peak / 1e9:.0f} GFLOP/s, load average {_load()}"
    )
    rows = []
    for family in families:
        tl_times, our_times = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            want = tl_sweep(family)
            tl_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = ours(family)
            our_times.append(time.perf_counter() - t)
        diff = float((torch.tensor(got.grid) - want.double().cpu()).abs().max())
        tl_s, our_s = statistics.median(tl_times), statistics.median(our_times)
        rows.append((family, got, tl_s, our_s, diff))
    print(f"load average after the timings: {_load()}")
    print(
        "| sweep | patches | transformer_lens s | causal-mi s | speed-up | max abs diff | "
        "peak memory growth TL / ours (MiB) | causal-mi GFLOP | fraction of FLOP bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for family, got, tl_s, our_s, diff in rows:
        mem = f"{_probe(args, 'tl', family):.0f} / {_probe(args, 'ours', family):.0f}"
        frac = got.flops / our_s / peak
        print(
            f"| {family} | {got.per_example.shape[0]} | {tl_s:.3f} | {our_s:.3f} | "
            f"{tl_s / our_s:.1f}x | {diff:.1e} | {mem} | {got.flops / 1e9:.1f} | {frac:.0%} |"
        )


if __name__ == "__main__":
    main()
