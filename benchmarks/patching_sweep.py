"""Benchmark: causal-mi's patching sweeps vs transformer_lens, nnsight and pyvene.

The contenders (``benchmarks/contenders.py``) compute the same grids, the all-heads sweep
(``head_out``: every head's output at all positions) and the ``resid_pre`` x position sweep,
on the same weights and the same clean/corrupt batch, in one process:

- every contender is warmed up on every family it is timed on (one full untimed sweep);
- the timed sweeps are interleaved: each repeat runs every contender once per family, the
  order of the contenders rotating from repeat to repeat; the median and the min-max over
  the repeats are reported;
- every contender's grid (every repeat's) is compared with causal-mi's (max abs difference;
  ``--tol``, default 1e-4); the script exits 1 if one differs;
- peak memory growth of a cold and a warm sweep per contender and family is measured in a
  fresh subprocess each (the process RSS high-water mark, ``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``, minus the RSS before the call, every weight read
  first; on CUDA the allocator's peak minus its use before the call), so no contender
  reuses memory another freed;
- the matrix-product peak of the device is measured in the same process (best of 1 s of
  fp32 products, before and after the timings; the higher is used); each contender's
  fraction of it is the
  arithmetic it does (causal-mi: counted by its engine; the hook libraries: one full forward
  pass per patched run plus the clean run; pyvene: two per call, it re-runs the source)
  divided by its median time and by that peak;
- on CUDA every timed region starts and ends with ``torch.cuda.synchronize()``.

    PYTHONPATH=. python benchmarks/patching_sweep.py --model llama-shape --heads 8 \
        --kv-heads 2 --batch 1 --length 4 --threads 1 --repeats 5
    PYTHONPATH=. python benchmarks/patching_sweep.py --model gpt2-small --batch 2 --length 8
    PYTHONPATH=. python benchmarks/patching_sweep.py --model zoo --repeats 15

(commands and numbers: ``benchmarks/RESULTS.md``).

nnsight and pyvene are optional: ``pip install -c constraints.txt -e '.[bench]'``; a missing
one is skipped with the reason. ``--contenders`` picks a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # transformer_lens' patching progress bars
sys.path.insert(0, str(Path(__file__).resolve().parent))
import contenders as C  # noqa: E402

MODELS = ("tiny-llama", "llama-shape", "gpt2-small", "zoo")


def _word_tokenizer(directory: Path, size: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1}
    vocab.update({f"w{i}": i + 2 for i in range(size - 2)})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<bos>", unk_token="<unk>"
    )
    fast.save_pretrained(directory)


def build_model(
    kind: str,
    directory: Path,
    heads: int = 12,
    kv_heads: int = 3,
    layers: int = 12,
    width: int = 768,
) -> int:
    """Save a randomly initialised HF model of shape ``kind`` and a word-level tokenizer to
    ``directory``; returns its parameter count.

    - ``llama-shape``: rotary, grouped-query attention 4:1, SwiGLU, RMSNorm; 12 layers,
      d_model 768, ``heads`` query / ``kv_heads`` key-value heads (12 / 3 by default; any
      pair with the same d_model has the same ~123M parameters), d_mlp 2048, 32,000 words;
      ``layers`` and ``width`` (d_model; d_mlp 8/3 of it) make smaller ones of this shape;
    - ``gpt2-small``: GPT-2-small's shape (12 layers, d_model 768, 12 heads, 50,257 words);
    - ``tiny-llama``: the Llama features at 2 layers, d_model 32, 4 query / 1 key-value heads
      (for the test).
    """
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    ids = dict(bos_token_id=0, eos_token_id=0)
    if kind == "gpt2-small":
        vocab, model = 50257, None
        cfg = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=768, n_layer=12, n_head=12)
        cls = GPT2LMHeadModel
    else:
        big = kind == "llama-shape"
        vocab = 32000 if big else 100
        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=width if big else 32,
            intermediate_size=width * 8 // 3 if big else 64,
            num_hidden_layers=layers if big else 2,
            num_attention_heads=heads if big else 4,
            num_key_value_heads=kv_heads if big else 1,
            max_position_embeddings=128,
            **ids,
        )
        cls = LlamaForCausalLM
    _word_tokenizer(directory, vocab)
    torch.manual_seed(0)
    model = cls(cfg).eval()
    if kind == "tiny-llama":  # larger weights so that patches move the logits visibly
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(8.0 if p.dim() > 1 else 1.0)
    model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def make_task(model, batch: int, length: int, seed: int = 0):
    """``batch`` random clean/corrupt prompt pairs of ``length`` tokens (BOS first)."""
    from causal_mi.tasks.base import Example, Task

    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor(model.tokens.content_ids())
    bos = model.bridge.tokenizer.bos_token_id
    exs = []
    for i in range(batch):
        c = [bos] + pool[torch.randint(len(pool), (length - 1,), generator=g)].tolist()
        x = [bos] + pool[torch.randint(len(pool), (length - 1,), generator=g)].tolist()
        a, w = pool[torch.randint(len(pool), (2,), generator=g)].tolist()
        exs.append(Example(tuple(c), tuple(x), a, w, f"random #{i}"))
    return Task("random", tuple(exs))


def setup(directory: str, args, with_hf: bool = True) -> C.Bench:
    """The bench on ``directory``'s model: causal-mi's loaded model (its transformer_lens
    bridge) and a plain HF copy of the same checkpoint for nnsight and pyvene."""
    from causal_mi.models.loading import load_model

    torch.manual_seed(0)
    ref = directory if directory.startswith("zoo:") else f"path:{directory}"
    model = load_model(ref, device=args.device)
    hf = None
    if with_hf and not directory.startswith("zoo:"):
        from transformers import AutoModelForCausalLM

        try:
            hf = AutoModelForCausalLM.from_pretrained(directory).to(args.device).eval()
        except (OSError, ValueError, KeyError):  # not an HF checkpoint (TL-native format)
            hf = None
    task = make_task(model, args.batch, args.length)
    dev = args.device
    ex = task.examples
    return C.Bench(
        model,
        hf,
        task,
        torch.tensor([e.clean for e in ex], device=dev),
        torch.tensor([e.corrupt for e in ex], device=dev),
        torch.tensor([e.answer for e in ex], device=dev),
        torch.tensor([e.wrong for e in ex], device=dev),
        None if args.max_memory is None else int(args.max_memory * 2**20),
        args.nnsight_invokes,
    )


def sync(device: str) -> None:
    """Wait for the device's queued work (a timed region must not end before it does)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, seconds: float = 1.0) -> float:
    """Measured fp32 matrix-product throughput (FLOP/s) of ``device``, best of ``seconds``."""
    n = 4096 if device.startswith("cuda") else 1024
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def max_diff(grid: np.ndarray, reference: np.ndarray) -> float:
    """Max abs difference of two grids (inf if their shapes differ or one has a NaN)."""
    grid, reference = np.asarray(grid, dtype=np.float64), np.asarray(reference, np.float64)
    if grid.shape != reference.shape:
        return float("inf")
    d = np.abs(grid - reference)
    return float("inf") if np.isnan(d).any() else float(d.max())


def equal(grid: np.ndarray, reference: np.ndarray, tol: float) -> bool:
    """Whether ``grid`` equals ``reference`` to ``tol`` (the benchmark's correctness check)."""
    return max_diff(grid, reference) <= tol


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_probe(args) -> None:
    """In a fresh process: peak memory growth (MiB) of two sweeps of one contender, each
    over the memory in use just before it. Every weight is read first (the checkpoint is
    memory-mapped: its pages would otherwise count as the first sweep's memory). The first
    sweep (cold) also pays what a first call allocates once (structures kept for later
    calls, allocator pools); the second (warm) only what the process did not already hold.
    Printed on two lines, cold then warm."""
    bench = setup(args.dir, args, with_hf=args.memory_probe.split("-")[0] in ("nnsight", "pyvene"))
    fn = C.make(args.memory_probe, bench)
    for module in (bench.model.bridge, bench.hf):  # read every weight page of the checkpoint
        for p in [] if module is None else module.parameters():
            float(p.detach().sum())
    for _ in range(2):
        if args.device.startswith("cuda"):
            sync(args.device)
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            fn(args.families)
            sync(args.device)
            print((torch.cuda.max_memory_allocated() - base) / 2**20, flush=True)
            continue
        base = _status_mib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        fn(args.families)
        print(_status_mib("VmHWM") - base, flush=True)


def _probe(args, name: str, family: str) -> tuple[float, float]:
    """(cold, warm) peak memory growth of ``name``'s sweep, in a fresh process."""
    cmd = [sys.executable, __file__, "--dir", args.dir, "--batch", str(args.batch)]
    cmd += ["--length", str(args.length), "--device", args.device, "--families", family]
    if args.max_memory is not None:
        cmd += ["--max-memory", str(args.max_memory)]
    cmd += ["--memory-probe", name]
    cmd += ["--nnsight-invokes", str(args.nnsight_invokes)]
    cmd += ["--threads", str(torch.get_num_threads())]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode or len(lines) < 2:
        return float("nan"), float("nan")
    return float(lines[-2]), float(lines[-1])


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=MODELS, default="llama-shape")
    ap.add_argument("--heads", type=int, default=12, help="llama-shape: query heads")
    ap.add_argument("--kv-heads", type=int, default=3, help="llama-shape: key-value heads")
    ap.add_argument("--layers", type=int, default=12, help="llama-shape: layers")
    ap.add_argument("--width", type=int, default=768, help="llama-shape: d_model")
    ap.add_argument("--dir", help="an existing model directory (or zoo:NAME) instead of --model")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=8, help="tokens per prompt (BOS included)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--families", default="head_out,resid_pre")
    ap.add_argument("--contenders", default=",".join(C.NAMES))
    ap.add_argument(
        "--max-memory",
        type=float,
        help="MiB for causal-mi's sweeps (default: the engine's, scaled to the workload)",
    )
    ap.add_argument("--nnsight-invokes", type=int, default=48, help="invokers per trace")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's; 1 on a loaded machine)"
    )
    ap.add_argument("--peak-seconds", type=float, default=1.0, help="matmul peak: best of")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--memory", choices=["subprocess", "off"], default="subprocess")
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--memory-probe", choices=C.NAMES, help=argparse.SUPPRESS)
    # adds this much to one contender's grid: shows that the comparison catches a wrong grid
    ap.add_argument("--perturb", nargs=2, metavar=("CONTENDER", "AMOUNT"), help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with torch.no_grad():
        if args.memory_probe:
            memory_probe(args)
            return 0
        return _run(args)


def _run(args) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return _measure(args, tmp)


def _measure(args, tmp: str) -> int:
    n_params = None
    if args.dir is None and args.model == "zoo":
        args.dir = "zoo:induction-2l"
    elif args.dir is None:
        args.dir = tmp
        shape = (args.heads, args.kv_heads, args.layers, args.width)
        n_params = build_model(args.model, Path(tmp), *shape)
    bench = setup(args.dir, args)
    families = args.families.split(",")
    names, skipped = [], {}
    for name in args.contenders.split(","):
        why = C.missing(name, bench)
        if why is None:
            names.append(name)
        else:
            skipped[name] = why
    if "causal-mi" not in names:
        names.insert(0, "causal-mi")  # the reference grid
    fns = {n: C.make(n, bench) for n in names}
    perturb = (args.perturb[0], float(args.perturb[1])) if args.perturb else None
    dev = args.device
    peak = matmul_peak(dev, args.peak_seconds)

    def timed(name: str, family: str) -> tuple[float, C.Outcome]:
        sync(dev)
        t = time.perf_counter()
        out = fns[name](family)
        sync(dev)
        took = time.perf_counter() - t
        if perturb and perturb[0] == name:
            out = C.Outcome(out.grid + perturb[1], out.flops)
        return took, out

    print(
        f"model {args.model if n_params else args.dir}"
        + (f" ({n_params / 1e6:.1f}M parameters)" if n_params else "")
        + f", batch {args.batch} x {args.length}, device {dev}, torch threads "
        f"{torch.get_num_threads()}, repeats {args.repeats}, matmul peak {peak / 1e9:.0f} "
        f"GFLOP/s, load average {_load()}"
    )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    warm = {(n, f): timed(n, f) for f in families for n in names}  # warm-up, also checked
    print(f"warm-up done, load average {_load()}", flush=True)
    times = {(n, f): [] for n in names for f in families}
    diffs = {(n, f): max_diff(warm[n, f][1].grid, warm["causal-mi", f][1].grid) for n, f in warm}
    for r in range(args.repeats):
        for f in families:
            order = names[r % len(names) :] + names[: r % len(names)]
            got = {}
            for n in order:
                took, got[n] = timed(n, f)
                times[n, f].append(took)
                print(f"  {f} {n}: {took:.3f} s", flush=True)
            for n in names:
                d = max_diff(got[n].grid, got["causal-mi"].grid)
                diffs[n, f] = max(diffs[n, f], d)
        print(f"repeat {r + 1} done, load average {_load()}", flush=True)
    peak_after = matmul_peak(dev, args.peak_seconds)
    print(
        f"load average after the timings: {_load()}; matmul peak again {peak_after / 1e9:.0f} "
        f"GFLOP/s (fractions below use the higher of the two)"
    )
    peak = max(peak, peak_after)
    memory = {}
    if args.memory == "subprocess":
        memory = {(n, f): _probe(args, n, f) for f in families for n in names}
    print(
        "| sweep | contender | patches | median s | min-max s | time / causal-mi | "
        "max abs diff vs causal-mi | peak memory growth MiB, cold / warm | GFLOP | "
        "fraction of matmul peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ok, rows = True, []
    for f in families:
        ours = statistics.median(times["causal-mi", f])
        for n in names:
            ts = times[n, f]
            med = statistics.median(ts)
            flops = warm[n, f][1].flops
            good = diffs[n, f] <= args.tol
            ok &= good
            mem = memory.get((n, f), (float("nan"), float("nan")))
            mib = f"{mem[0]:.0f} / {mem[1]:.0f}"
            mark = "" if good else f" DIFFERS (> {args.tol:g})"
            print(
                f"| {f} | {n} | {warm[n, f][1].grid.size} | {med:.3f} | {min(ts):.3f}-"
                f"{max(ts):.3f} | {med / ours:.2f}x | {diffs[n, f]:.1e}{mark} | {mib} | "
                f"{flops / 1e9:.1f} | {flops / med / peak:.0%} |"
            )
            rows.append(
                dict(
                    family=f,
                    contender=n,
                    times=ts,
                    median=med,
                    max_diff=diffs[n, f],
                    memory_mib_cold=mem[0],
                    memory_mib_warm=mem[1],
                    flops=flops,
                )
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                dict(args=vars(args), peak=peak, peak_after=peak_after, skipped=skipped, rows=rows),
                indent=1,
            )
        )
    if not ok:
        print(f"FAIL: a contender's grid differs from causal-mi's by more than {args.tol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
