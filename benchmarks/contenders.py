"""The contenders of the sweep benchmark (``benchmarks/patching_sweep.py``).

Each contender computes one activation-patching grid, the mean logit difference (answer
minus wrong token, last position) of the corrupt prompts with one site patched from the
clean run, for every index of a family:

- ``head_out``: every head's output (z, all positions) -> grid [layer, head];
- ``resid_pre``: the residual stream before each layer at one position -> grid [layer, pos].

All of them use the same weights and the same clean/corrupt batch (:class:`Bench`):

- ``causal-mi``: :func:`causal_mi.effects.patching.act_patch` (the incremental engine);
- ``transformer_lens``: ``get_act_patch_attn_head_out_all_pos`` / ``get_act_patch_resid_pre``
  on the loaded bridge, under ``torch.no_grad()``, after a clean ``run_with_cache`` restricted
  by ``names_filter`` to the hooks the patching reads;
- ``nnsight-loop``: nnsight's natural usage, one clean trace saving the patched sites, then
  one trace per patch;
- ``nnsight-batched``: the same patches as invokers of one trace (``--nnsight-invokes`` per
  trace), which nnsight batches into one forward pass;
- ``pyvene``: its natural usage, one ``IntervenableModel`` per layer with a
  ``VanillaIntervention`` and one call per index (each call runs the source and the base).

nnsight and pyvene run on a Hugging Face copy of the same checkpoint (the bridge replaces the
HF model's submodules with its own wrappers, so they get the plain HF modules, as their users
do). They are optional: ``pip install -c constraints.txt -e '.[bench]'``; a missing one is
skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

INSTALL = "pip install -c constraints.txt -e '.[bench]'"
NAMES = ("causal-mi", "transformer_lens", "nnsight-loop", "nnsight-batched", "pyvene")
TL_FN = {"head_out": "get_act_patch_attn_head_out_all_pos", "resid_pre": "get_act_patch_resid_pre"}
TL_HOOK = {"head_out": "blocks.{}.attn.hook_z", "resid_pre": "blocks.{}.hook_resid_pre"}
PV_COMPONENT = {
    "head_out": ("head_attention_value_output", "h.pos"),
    "resid_pre": ("block_input", "pos"),
}


@dataclass(frozen=True)
class Outcome:
    """One sweep's grid (mean metric per index) and the arithmetic it did (FLOPs)."""

    grid: np.ndarray
    flops: float


@dataclass
class Bench:
    """The model (causal-mi's loaded model and, if wanted, a plain HF copy), the batch."""

    model: Any  # causal_mi LoadedModel (its bridge is transformer_lens' model)
    hf: Any | None  # the HF model loaded from the same directory, or None
    task: Any  # causal_mi Task of the batch
    clean: torch.Tensor  # [B, P]
    corrupt: torch.Tensor
    answer: torch.Tensor  # [B]
    wrong: torch.Tensor
    max_memory: int | None  # bytes, causal-mi's working budget (None: the engine's default)
    nnsight_invokes: int = 48

    @property
    def n_layers(self) -> int:
        return self.model.dims.n_layers

    @property
    def n_heads(self) -> int:
        return self.model.dims.n_heads

    def metric(self, last: torch.Tensor) -> torch.Tensor:
        """Mean logit difference of last-position logits [B, vocab] (or [N * B, vocab] ->
        [N])."""
        rows = last.view(-1, len(self.answer), last.shape[-1])
        i = torch.arange(len(self.answer), device=last.device)
        return (rows[:, i, self.answer] - rows[:, i, self.wrong]).mean(-1)

    def indices(self, family: str) -> list[tuple[int, int]]:
        second = self.n_heads if family == "head_out" else self.clean.shape[1]
        return [(la, j) for la in range(self.n_layers) for j in range(second)]

    def shape(self, family: str) -> tuple[int, int]:
        second = self.n_heads if family == "head_out" else self.clean.shape[1]
        return (self.n_layers, second)


def full_forward_flops(bench: Bench) -> float:
    """FLOPs of one full forward pass of the batch, logits at every position (what a hook
    library computes per patched run), by the engine's own per-stage count."""
    from causal_mi.engine.incremental import incremental_model

    m = incremental_model(bench.model)
    B, P = bench.clean.shape
    per_prompt = sum(m.stage_flops(s, P, P, False) for s in range(m.final))
    return float(B * (per_prompt + P * m.stage_flops(m.final, P, P, False)))


def missing(name: str, bench: Bench) -> str | None:
    """Why contender ``name`` cannot run here, or None."""
    lib = name.split("-")[0]
    if lib in ("nnsight", "pyvene"):
        if importlib.util.find_spec(lib) is None:
            return f"{lib} is not installed (optional; {INSTALL})"
        if bench.hf is None:
            return "the model is not a Hugging Face checkpoint (nothing for it to wrap)"
        if _paths(bench.hf) is None:
            return f"no module paths for model type '{bench.hf.config.model_type}'"
    return None


def make(name: str, bench: Bench) -> Callable[[str], Outcome]:
    """The sweep function of contender ``name`` (check :func:`missing` first)."""
    return {
        "causal-mi": _causal_mi,
        "transformer_lens": _transformer_lens,
        "nnsight-loop": _nnsight_loop,
        "nnsight-batched": _nnsight_batched,
        "pyvene": _pyvene,
    }[name](bench)


def _causal_mi(bench: Bench) -> Callable[[str], Outcome]:
    from causal_mi.effects.patching import act_patch

    def run(family: str) -> Outcome:
        got = act_patch(bench.model, bench.task, family, max_memory=bench.max_memory)
        return Outcome(np.asarray(got.grid, dtype=np.float64), float(got.flops))

    return run


def _transformer_lens(bench: Bench) -> Callable[[str], Outcome]:
    import transformer_lens.patching as patching

    bridge = bench.model.bridge
    bridge.eval()
    full = full_forward_flops(bench)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return bench.metric(logits[:, -1])[0]

    def run(family: str) -> Outcome:
        names = [TL_HOOK[family].format(la) for la in range(bench.n_layers)]
        with torch.no_grad():
            _, cache = bridge.run_with_cache(bench.clean, names_filter=names)
            grid = getattr(patching, TL_FN[family])(bridge, bench.corrupt, cache, metric)
        n = len(bench.indices(family))
        return Outcome(grid.double().cpu().numpy(), (n + 1) * full)

    return run


def _paths(hf) -> dict[str, Callable[[Any, int], Any]] | None:
    """Module accessors of an nnsight-wrapped HF model: the block (its input is resid_pre)
    and the attention's output projection (its input is z, heads concatenated)."""
    kind = hf.config.model_type
    if kind in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo2"):
        return {
            "resid_pre": lambda nm, la: nm.model.layers[la],
            "head_out": lambda nm, la: nm.model.layers[la].self_attn.o_proj,
        }
    if kind == "gpt2":
        return {
            "resid_pre": lambda nm, la: nm.transformer.h[la],
            "head_out": lambda nm, la: nm.transformer.h[la].attn.c_proj,
        }
    return None


def _nnsight_model(bench: Bench):
    from nnsight import LanguageModel

    with warnings.catch_warnings():  # LanguageModel's deprecation notice (nnsight 0.8)
        warnings.simplefilter("ignore")
        return LanguageModel(bench.hf, tokenizer=bench.model.tokens.tokenizer)


def _d_head(bench: Bench) -> int:
    """Width of one head's slice of the output projection's input."""
    head_dim = getattr(bench.hf.config, "head_dim", None)
    return head_dim if head_dim else bench.hf.config.hidden_size // bench.n_heads


def _clean_sites(nm, bench: Bench, family: str, at) -> list[torch.Tensor]:
    """One clean trace saving the input of every patched module, in execution order."""
    saved: list[torch.Tensor] = []  # bound before the trace: nnsight writes back into it
    with nm.trace(bench.clean):
        for la in range(bench.n_layers):
            saved.append(at(nm, la).input.save())
    return saved


def _patch(nm, at, saved, family: str, la: int, j: int, dh: int) -> None:
    """Inside a trace: write the clean value of index (la, j) into the module input."""
    if family == "head_out":
        at(nm, la).input[:, :, j * dh : (j + 1) * dh] = saved[la][:, :, j * dh : (j + 1) * dh]
    else:
        at(nm, la).input[:, j] = saved[la][:, j]


def _nnsight_loop(bench: Bench) -> Callable[[str], Outcome]:
    nm = _nnsight_model(bench)
    paths, dh, full = _paths(bench.hf), _d_head(bench), full_forward_flops(bench)

    def run(family: str) -> Outcome:
        at = paths[family]
        values = []
        with torch.no_grad():
            saved = _clean_sites(nm, bench, family, at)
            last = None  # bound before the trace: nnsight writes it back
            for la, j in bench.indices(family):
                with nm.trace(bench.corrupt):
                    _patch(nm, at, saved, family, la, j, dh)
                    last = nm.output.logits[:, -1].save()
                values.append(bench.metric(last)[0])
        grid = torch.stack(values).double().cpu().numpy().reshape(bench.shape(family))
        return Outcome(grid, (len(values) + 1) * full)

    return run


def _nnsight_batched(bench: Bench) -> Callable[[str], Outcome]:
    nm = _nnsight_model(bench)
    paths, dh, full = _paths(bench.hf), _d_head(bench), full_forward_flops(bench)

    def run(family: str) -> Outcome:
        at = paths[family]
        idx = bench.indices(family)
        values = []
        with torch.no_grad():
            saved = _clean_sites(nm, bench, family, at)
            for lo in range(0, len(idx), bench.nnsight_invokes):
                outs = []
                with nm.trace() as tracer:
                    for la, j in idx[lo : lo + bench.nnsight_invokes]:
                        with tracer.invoke(bench.corrupt):
                            _patch(nm, at, saved, family, la, j, dh)
                            outs.append(nm.output.logits[:, -1].save())
                values += [bench.metric(o)[0] for o in outs]
        grid = torch.stack(values).double().cpu().numpy().reshape(bench.shape(family))
        return Outcome(grid, (len(values) + 1) * full)

    return run


def _pyvene(bench: Bench) -> Callable[[str], Outcome]:
    import pyvene as pv

    full = full_forward_flops(bench)
    B = len(bench.answer)

    def run(family: str) -> Outcome:
        component, unit = PV_COMPONENT[family]
        second = bench.shape(family)[1]
        values = []
        with torch.no_grad():
            for la in range(bench.n_layers):
                cfg = pv.IntervenableConfig(
                    [
                        {
                            "layer": la,
                            "component": component,
                            "unit": unit,
                            "intervention_type": pv.VanillaIntervention,
                        }
                    ]
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pvm = pv.IntervenableModel(cfg, model=bench.hf)
                pvm.disable_model_gradients()
                for j in range(second):
                    if unit == "h.pos":
                        where = ([[j]] * B, [list(range(bench.clean.shape[1]))] * B)
                    else:
                        where = [[j]] * B
                    _, out = pvm(
                        {"input_ids": bench.corrupt},
                        [{"input_ids": bench.clean}],
                        {"sources->base": ([where], [where])},
                    )
                    values.append(bench.metric(out.logits[:, -1])[0])
        grid = torch.stack(values).double().cpu().numpy().reshape(bench.shape(family))
        return Outcome(grid, 2 * len(values) * full)  # each call runs source and base

    return run
