"""Map canonical sites to TransformerBridge hook points (one adapter; TL names are canonical).

Each site becomes a hook name plus the index of the site inside that hook's activation:
``[rows, pos, head, d_head]`` for heads (``hook_z`` is the head's output before W_O, so
replacing it replaces the head's term in the residual stream), ``[rows, pos, d_mlp]`` for
neurons, ``[rows, pos, d_model]`` otherwise. The one exception to "positions on axis 1" is
the attention pattern, ``hook_pattern``: ``[rows, head, query pos, key pos]`` (post-softmax;
the bridge applies it inside the attention, so a replaced pattern re-weights the values).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from causal_mi.spec.sites import Kind, Site


@dataclass(frozen=True)
class HookPoint:
    """Where a site lives: the hook to write, the index along its third axis (or -1).

    Most sites are read and written at the same hook. ``resid_mid`` is the exception: the
    bridge's ``hook_resid_mid`` is the input of ln2 (a copy), so writing it would not change
    the residual stream. It is read there and written through the attention output:
    ``attn_out := value - resid_pre`` makes ``resid_pre + attn_out == value``.
    """

    name: str
    channel: int = -1  # head (axis 2; pattern: axis 1) or neuron (axis 2); -1: the whole vector
    read: str = ""  # hook whose value *is* the site (defaults to ``name``)
    minus: str = ""  # hook (same pass) to subtract from the written value

    @property
    def read_name(self) -> str:
        return self.read or self.name


def heads_first(hook: str) -> bool:
    """True for hooks whose activation is ``[rows, head, pos, ...]`` (the attention pattern)
    rather than ``[rows, pos, ...]``."""
    return hook.endswith(".attn.hook_pattern")


def hook_point(site: Site) -> HookPoint:
    """The hook point of ``site`` (positions are applied by the engine)."""
    k, layer = site.kind, site.layer
    if k is Kind.HEAD:
        return HookPoint(f"blocks.{layer}.attn.hook_z", site.head)
    if k is Kind.HEAD_INPUT:
        return HookPoint(f"blocks.{layer}.attn.hook_{site.channel}", site.head)
    if k is Kind.PATTERN:
        return HookPoint(f"blocks.{layer}.attn.hook_pattern", site.head)
    if k is Kind.MLP:
        return HookPoint(f"blocks.{layer}.hook_mlp_out")
    if k is Kind.MLP_IN:
        return HookPoint(f"blocks.{layer}.mlp.hook_in")
    if k is Kind.NEURON:
        return HookPoint(f"blocks.{layer}.mlp.hook_post", site.index)
    if k is Kind.RESID and site.channel == "resid_mid":
        return HookPoint(
            f"blocks.{layer}.hook_attn_out",
            read=f"blocks.{layer}.hook_resid_mid",
            minus=f"blocks.{layer}.hook_resid_pre",
        )
    if k is Kind.RESID:
        return HookPoint(f"blocks.{layer}.hook_{site.channel}")
    if k is Kind.EMBED:
        return HookPoint("blocks.0.hook_resid_pre")
    raise ValueError(f"{site} has no activation to patch (logits are the model's output)")


# Grouped-query attention (SPEC 4, v1.1) --------------------------------------------------------
# ``LxHy.q|k|v`` is query head y's own input. Under grouped-query (or multi-query) attention
# several query heads read one key/value head, and the bridge's ``hook_k`` / ``hook_v`` carry
# the key/value heads. For a pass that patches a key or value, the engine expands the grouped
# key and value of that layer per query head (each query head gets its own copy, exactly what
# the attention would read) and tells the attention not to expand them again, so a patch of
# ``LxHy.k`` changes the key head y reads and no other head's.

GQA_UNSUPPORTED = (
    "this grouped-query model's attention ({cls}) expands its key/value heads inside a "
    "module causal-mi cannot reach, so a per-query-head key or value (LxHy.k, LxHy.v) cannot "
    "be patched through hooks on it; patch the head's output (LxHy) or its query instead"
)


@dataclass(frozen=True)
class KVGroups:
    """Where a bridge's attention groups key/value heads: ``group`` query heads per key/value
    head, and per layer the module whose ``num_key_value_groups`` its attention reads."""

    group: int
    modules: tuple  # per layer: the HF attention module (None where it cannot be ungrouped)
    bridge_class: str

    def expandable(self, layer: int) -> bool:
        return self.modules[layer] is not None


def kv_groups(bridge) -> KVGroups | None:
    """The key/value grouping of ``bridge`` (None: one key/value head per query head)."""
    cfg = bridge.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    if n_kv == cfg.n_heads:
        return None
    mods = []
    cls = ""
    for blk in bridge.blocks:
        attn = blk.attn
        cls = type(attn).__name__
        hf = getattr(attn, "original_component", None)
        ok = _reconstructs(attn) and hasattr(hf, "num_key_value_groups")
        mods.append(hf if ok else None)
    return KVGroups(cfg.n_heads // n_kv, tuple(mods), cls)


def attention_hook(bridge, name: str) -> str:
    """The hook a q/k head-input site reads and writes on ``bridge``: the query or key as
    attention reads it (after any q/k norm and the rotary embedding, ``hook_rot_q|k``) where
    the bridge has that hook, so a head's patch never reaches another head through a norm
    over all heads (OLMo 2); the name unchanged otherwise."""
    for short, rot in ((".attn.hook_q", ".attn.hook_rot_q"), (".attn.hook_k", ".attn.hook_rot_k")):
        if name.endswith(short):
            candidate = name[: -len(short)] + rot
            layer = int(name.split(".")[1])
            if candidate in bridge.hook_dict and _reconstructs(bridge.blocks[layer].attn):
                return candidate
    return name


def _reconstructs(attn) -> bool:
    """True for the bridge attention that runs (and fires hooks on) every step itself:
    rotated q/k hooks, and the key/value expansion it reads from the HF module. Other bridge
    attentions declare ``hook_rot_q|k`` without firing them."""
    return type(attn).__name__ == "PositionEmbeddingsAttentionBridge"


def grouped_layer(name: str) -> int | None:
    """The layer of a key or value hook (``blocks.L.attn.hook_k|hook_rot_k|hook_v``)."""
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blocks" and parts[3] in ("hook_k", "hook_rot_k", "hook_v"):
        return int(parts[1])
    return None


@contextmanager
def ungrouped(groups: KVGroups | None, layers: set[int]):
    """Within the block, the attention of ``layers`` reads keys and values already expanded
    per query head (the engine's hooks expand them); restored on exit."""
    if groups is None or not layers:
        yield
        return
    saved = []
    try:
        for la in sorted(layers):
            mod = groups.modules[la]
            saved.append((mod, mod.num_key_value_groups))
            mod.num_key_value_groups = 1
        yield
    finally:
        for mod, g in saved:
            mod.num_key_value_groups = g
