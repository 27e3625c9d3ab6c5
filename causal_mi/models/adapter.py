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


UNEMBED_IN = "unembed.hook_in"  # the final residual stream, as the unembedding reads it
LOGITS_OUT = "unembed.hook_out"  # the logits


def layer_hook(layer: int, what: str) -> str:
    """A layer's activation as one hook, every head or neuron at once: ``z`` (the heads'
    outputs), ``k`` / ``v`` (the attention's keys and values), ``mlp_out`` (the MLP's
    output), ``mlp_post`` (its neurons), ``pattern`` (every head's attention pattern)."""
    site = {
        "z": Site(Kind.HEAD, layer, 0),
        "k": Site(Kind.HEAD_INPUT, layer, 0, channel="k"),
        "v": Site(Kind.HEAD_INPUT, layer, 0, channel="v"),
        "mlp_out": Site(Kind.MLP, layer),
        "mlp_post": Site(Kind.NEURON, layer, index=0),
        "pattern": Site(Kind.PATTERN, layer, 0),
    }.get(what)
    if site is None:
        valid = "z, k, v, mlp_out, mlp_post, pattern"
        raise ValueError(f"unknown layer activation {what!r}; valid: {valid}")
    return hook_point(site).name


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


_JOINT = ("JointQKVAttentionBridge", "JointQKVPositionEmbeddingsAttentionBridge")


@dataclass(frozen=True)
class KVGroups:
    """Where a bridge's attention groups key/value heads: ``group`` query heads per key/value
    head, and what its attention reads to expand them: per layer, the HF module's
    ``num_key_value_groups`` (``modules``), or for fused-qkv attention the bridge config's
    ``n_key_value_heads`` (``configs``, shared by every layer)."""

    group: int
    n_heads: int
    modules: tuple  # per layer: the HF attention module (None where it cannot be ungrouped)
    configs: tuple  # config objects read by fused-qkv attention (all layers at once)
    bridge_class: str

    def expand_layers(self, layers: set[int]) -> set[int] | None:
        """The layers whose keys and values a pass touching ``layers`` must expand (a shared
        config expands every layer), or None when this bridge cannot."""
        if not layers:
            return set()
        if self.configs:
            return set(range(len(self.modules)))
        return None if any(self.modules[la] is None for la in layers) else set(layers)


def kv_groups(bridge) -> KVGroups | None:
    """The key/value grouping of ``bridge`` (None: one key/value head per query head)."""
    cfg = bridge.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    if n_kv == cfg.n_heads:
        return None
    mods, classes, configs = [], set(), []
    for blk in bridge.blocks:
        attn = blk.attn
        classes.add(type(attn).__name__)
        hf = getattr(attn, "original_component", None)
        ok = _reconstructs(attn) and hasattr(hf, "num_key_value_groups")
        mods.append(hf if ok else None)
        own = getattr(attn, "config", None)
        if own is not None and all(own is not c for c in configs):
            configs.append(own)
    joint = classes <= set(_JOINT)
    if joint and all(c is not cfg for c in configs):
        configs.append(cfg)
    return KVGroups(
        cfg.n_heads // n_kv,
        cfg.n_heads,
        tuple(mods),
        tuple(configs) if joint else (),
        ", ".join(sorted(classes)),
    )


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
    saved: list[tuple[object, str, int]] = []
    try:
        if groups.configs:
            for c in groups.configs:
                saved.append((c, "n_key_value_heads", c.n_key_value_heads))
                c.n_key_value_heads = groups.n_heads
        else:
            for la in sorted(layers):
                mod = groups.modules[la]
                saved.append((mod, "num_key_value_groups", mod.num_key_value_groups))
                mod.num_key_value_groups = 1
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def missing_activation(bridge, names: set[str]) -> str | None:
    """A sentence naming the first of ``names`` (hook names) the bridge lacks, and why, or
    None when it has them all. In a parallel block (GPT-NeoX, GPT-J, Phi) the attention and
    the MLP both read ``resid_pre``, so there is no ``resid_mid`` between them."""
    have = bridge.hook_dict
    for name in sorted(names):
        if name in have:
            continue
        parts = name.split(".")
        if parts[-1] == "hook_resid_mid":
            return (
                f"L{parts[1]}.resid_mid does not exist in this model: its blocks run attention "
                "and MLP in parallel, both reading resid_pre; use resid_pre, resid_post, "
                "attn_out (the heads) or the MLP's sites instead"
            )
        return f"this model has no activation '{name}' for the site asked for"
    return None
