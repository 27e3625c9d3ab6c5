"""Map canonical sites to TransformerBridge hook points (one adapter; TL names are canonical).

Each site becomes a hook name plus the index of the site inside that hook's activation:
``[rows, pos, head, d_head]`` for heads (``hook_z`` is the head's output before W_O, so
replacing it replaces the head's term in the residual stream), ``[rows, pos, d_mlp]`` for
neurons, ``[rows, pos, d_model]`` otherwise. The one exception to "positions on axis 1" is
the attention pattern, ``hook_pattern``: ``[rows, head, query pos, key pos]`` (post-softmax;
the bridge applies it inside the attention, so a replaced pattern re-weights the values).
"""

from __future__ import annotations

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
