"""Execute intervention plans on a TransformerBridge: batched, chunked, hooks always scoped.

Several conditions are stacked along the batch axis of one forward pass (row block ``c``
holds condition ``c`` for a chunk of examples), so a plan of K conditions over n examples
costs about ``K * n / max_rows`` passes. Rows never interact, so results do not depend on
chunking or order. Examples are grouped by token length (no padding, so no padding
artefacts); ``mean`` sources average the corrupt prompts of the same length.

Examples corrupted by noise (:class:`causal_mi.tasks.base.Noise`) run their corrupt base as
the clean tokens plus the example's noise draw, added to the embeddings (the ``embed``
site, ``blocks.0.hook_resid_pre``) before any patch, so every use of the corrupt run (the
baseline, resample and mean sources, corrupt-based conditions, path patching's ablated run)
sees the same noised run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from causal_mi.engine.cache import (
    RunCache,
    bucket_keys,
    condition_key,
    example_key,
    scope_key,
)
from causal_mi.engine.hookfns import _capture, _last_position, _mask, _per_query_head, _positions
from causal_mi.engine.influence import saved_influence, uses_mean
from causal_mi.engine.noise import _add, embedding_noise, rows_noise
from causal_mi.engine.plan import Condition, Patch, post_ln
from causal_mi.errors import InputError
from causal_mi.models.adapter import (
    GQA_UNSUPPORTED,
    UNEMBED_IN,
    attention_hook,
    grouped_layer,
    heads_first,
    hook_point,
    kv_groups,
    layer_hook,
    missing_activation,
    ungrouped,
)
from causal_mi.models.encoders import is_encoder
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.sites import Kind, Role, Site
from causal_mi.tasks.base import Task

EMBED_HOOK = hook_point(Site(Kind.EMBED)).name  # where the noise enters the residual stream
_PATTERN_DISCARDED = r".*hook_pattern returned a modified tensor"
_PATTERN_UNSUPPORTED = (
    "this model's attention runs inside the wrapped Hugging Face module, which ignores "
    "edits to the attention pattern, so pattern sites (LxHy.pattern, the head_pattern "
    "sweep) cannot be patched; patch the head's q/k/v inputs or its output instead"
)

_EDGES_NEED_PLAIN = (
    "edge-level faithfulness (path patching) runs on plain examples only: prompts of one "
    "length each, single-token answer and wrong, the metric read at END; drop the edges to "
    "measure at node level, or use such a task; here: "
)

Progress = Callable[[int, int], None]
# metric(last_logits [R, V], answer [R], wrong [R], clean_logprobs [R, V]) -> values [R]
Metric = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RunResult:
    """Per-example metric values: ``values[c, i]`` for condition c and example i."""

    clean: np.ndarray  # [n]
    corrupt: np.ndarray  # [n]
    values: np.ndarray  # [n_conditions, n]
    recorded: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    # with ``influence=True``: each value's first-order correction for the sampling of a
    # mean source (0 without one, NaN where not computed; see engine.influence)
    influence: np.ndarray | None = None


@dataclass
class _Bucket:
    """Examples whose clean runs share one token length and corrupt runs another.

    A run is the prompt plus, for a multi-token answer, its teacher-forced continuation.
    ``answer`` / ``wrong`` are [n_b] token ids for plain examples, else [n_b, M, K] member
    tokens (see :mod:`causal_mi.engine.metrics`); ``read`` then holds each run's K metric
    positions. ``roles[base][name]`` and ``prompt_len[base]`` ([n_b]) resolve role and
    negative positions per row (``base``: ``"clean"`` or ``"corrupt"``)."""

    index: np.ndarray  # example indices in the task
    clean: torch.Tensor  # [n_b, L]
    corrupt: torch.Tensor  # [n_b, L'] (L' = L unless the prompts differ in length)
    answer: torch.Tensor
    wrong: torch.Tensor
    noise: torch.Tensor | None = None  # [n_b, L, d_model] added to the corrupt embeddings
    roles: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    prompt_len: dict[str, torch.Tensor] = field(default_factory=dict)
    read: dict[str, torch.Tensor] | None = None  # base -> [n_b, K]; None: last position
    aligned: bool = True  # equal run and prompt lengths: integer positions line up
    plain: bool = True  # every example plain (Example.plain): all engines apply

    @property
    def length(self) -> int:
        return int(self.clean.shape[1])

    @property
    def key(self) -> int | tuple[int, int]:
        """The bucket's identity in recordings and checkpoint tags: the token length, or
        (clean length, corrupt length) when they differ."""
        lc, lr = int(self.clean.shape[1]), int(self.corrupt.shape[1])
        return lc if lc == lr else (lc, lr)

    @property
    def tag(self) -> str:
        k = self.key
        return str(k) if isinstance(k, int) else f"{k[0]}x{k[1]}"


class Engine:
    """Runs conditions for a model and task; ``max_rows`` bounds rows per forward pass."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_rows: int = 256,
        progress: Progress | None = None,
        checkpoint_dir: Path | None = None,
        cache: RunCache | None = None,
    ):
        """``cache``: the run cache to read and extend (shared by the caller's engines);
        ``checkpoint_dir`` makes a disk cache there when no ``cache`` is given."""
        if cache is None and checkpoint_dir is not None:
            cache = RunCache(checkpoint_dir)
        self.cache = cache
        self.model = model
        self.bridge = model.bridge
        self.device = model.device
        self.max_rows = max(1, int(max_rows))
        self.progress = progress
        self.encoder = is_encoder(self.bridge)
        self.classifier = self.encoder and self.bridge.head == "classifier"
        # grouped-query attention (None: one kv per head; encoders have none)
        self.kv = None if self.encoder else kv_groups(self.bridge)
        self._names: dict[str, str] = {}

    def _hook(self, name: str) -> str:
        """The bridge hook a plan's hook name is read and written at (see
        :func:`causal_mi.models.adapter.attention_hook`)."""
        if name not in self._names:
            self._names[name] = attention_hook(self.bridge, name)
        return self._names[name]

    # public ------------------------------------------------------------------------------
    def run(
        self,
        task: Task,
        conditions: Sequence[Condition],
        metric: Metric,
        recorded: dict[str, dict[int, torch.Tensor]] | None = None,
        *,
        influence: bool = False,
    ) -> RunResult:
        """Metric values of every condition on every example (and requested recordings).

        Conditions equal in content (labels and recordings aside) run once, recording the
        union of what they ask for. With a run cache every finished pass is saved, and cells
        it already holds (from an earlier pass, stage or process) are read back.
        ``influence`` adds each value's correction for the sampling of a ``mean`` source
        (:mod:`causal_mi.engine.influence`; NaN for path-patching conditions)."""

        if self.encoder:
            conditions = [post_ln(c) for c in conditions]
        unique: dict[str, int] = {}
        merged: list[Condition] = []
        where: list[int] = []
        for c in conditions:
            k = condition_key(c)
            if k in unique:
                j = unique[k]
                record = tuple(dict.fromkeys(merged[j].record + c.record))
                merged[j] = dataclasses.replace(merged[j], record=record)
            else:
                unique[k] = len(merged)
                merged.append(c)
            where.append(unique[k])
        if len(merged) < len(conditions):
            r = self._run(task, merged, metric, recorded, influence)
            infl = None if r.influence is None else r.influence[where]
            return RunResult(r.clean, r.corrupt, r.values[where], r.recorded, infl)
        return self._run(task, conditions, metric, recorded, influence)

    def _run(
        self,
        task: Task,
        conditions: Sequence[Condition],
        metric: Metric,
        recorded: dict[str, dict[int, torch.Tensor]] | None,
        influence: bool = False,
    ) -> RunResult:
        names = {h for c in conditions for p in c.patches for h in (p.hook, p.read_hook, p.minus)}
        names |= {h for c in conditions for _, h in c.record}
        why = missing_activation(self.bridge, {self._hook(h) for h in names if h})
        if why:
            raise InputError(why, file=self.model.source)
        ckpt = self._cache(task, metric)
        n = len(task)
        clean = np.zeros(n)
        corrupt = np.zeros(n)
        values = np.zeros((len(conditions), n))
        infl = np.zeros((len(conditions), n)) if influence else None
        out_rec: dict[str, dict[int, list]] = {}
        hook_idx = [i for i, c in enumerate(conditions) if c.edges is None]
        edge_idx = [i for i, c in enumerate(conditions) if c.edges is not None]
        hook_conds = [conditions[i] for i in hook_idx]
        edge_conds = [conditions[i] for i in edge_idx]
        buckets = self._buckets(task)
        total = sum(
            self._n_passes(b, len(hook_conds)) + self._n_passes(b, len(edge_conds)) for b in buckets
        )
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if self.progress:
                self.progress(done, total)

        with torch.no_grad():
            for b in buckets:
                ex_keys = [example_key(task.examples[i]) for i in b.index]
                hook_keys = bucket_keys(hook_conds, ex_keys)
                base = _Baselines(self, b, hook_conds, metric, ckpt, ex_keys)
                clean[b.index], corrupt[b.index] = base.values()
                for c_lo, c_hi, e_lo, e_hi in self._chunks(b, len(hook_conds)):
                    chunk = hook_conds[c_lo:c_hi]
                    exk = ex_keys[e_lo:e_hi]
                    rows: list = [None] * len(chunk)
                    rec: dict[str, torch.Tensor] = {}
                    for j, c in enumerate(chunk):  # cells saved by any earlier pass or stage
                        hit = ckpt.lookup([hook_keys[c_lo + j]], exk, [c.record]) if ckpt else None
                        if hit is not None:
                            rows[j] = hit[0][0]
                            rec.update(hit[1])
                    todo = [j for j, r in enumerate(rows) if r is None]
                    if todo:
                        sub = [chunk[j] for j in todo]
                        got, sub_rec = self._patched(
                            b, sub, e_lo, e_hi, base.cache, recorded or {}, metric, base.logp
                        )
                        if ckpt:
                            sub_keys = [hook_keys[c_lo + j] for j in todo]
                            ckpt.store(sub_keys, exk, got, [c.record for c in sub], sub_rec)
                        for j, r in zip(todo, got, strict=True):
                            rows[j] = r
                        rec.update(sub_rec)
                    m = torch.stack(rows)
                    values[np.ix_(hook_idx[c_lo:c_hi], b.index[e_lo:e_hi])] = m.numpy()
                    for key, t in rec.items():
                        out_rec.setdefault(key, {}).setdefault(b.key, []).append((e_lo, t))
                    tick()
                if infl is not None:
                    infl[np.ix_(hook_idx, b.index)] = saved_influence(
                        self, b, hook_conds, hook_keys, base, recorded or {}, metric, ckpt, ex_keys
                    )
                    for i in edge_idx:  # path patching's mean is held fixed
                        infl[i, b.index] = np.nan if uses_mean(conditions[i]) else 0.0
                if edge_conds:
                    from causal_mi.engine.paths import run_edge_conditions

                    if not (b.plain and b.aligned):
                        raise InputError(_EDGES_NEED_PLAIN + (task.not_plain() or ""))

                    for (c_lo, c_hi, e_lo, e_hi), m in run_edge_conditions(
                        self, b, edge_conds, metric, base, ckpt, ex_keys
                    ):
                        values[np.ix_(edge_idx[c_lo:c_hi], b.index[e_lo:e_hi])] = m.numpy()
                        tick()
        recorded_out = {
            k: {
                length: torch.cat([t for _, t in sorted(parts, key=lambda x: x[0])])
                for length, parts in per.items()
            }
            for k, per in out_rec.items()
        }
        return RunResult(clean, corrupt, values, recorded_out, infl)

    # internals ---------------------------------------------------------------------------
    def _cache(self, task: Task, metric: Metric):
        """The run cache of this model, metric and noise corruption (None: no cache)."""
        metric_key = getattr(metric, "key", None)
        if self.cache is None or metric_key is None:
            return None  # an anonymous metric has no stable address: never cache it
        return self.cache.scope(scope_key(self.model, metric_key, task.noise))

    def _buckets(self, task: Task) -> list[_Bucket]:
        from causal_mi.engine.rows import make_bucket, run_tokens

        by_len: dict[tuple[int, int], list[int]] = {}
        for i, ex in enumerate(task.examples):
            key = (len(run_tokens(ex, "clean")), len(run_tokens(ex, "corrupt")))
            by_len.setdefault(key, []).append(i)
        out = []
        for key in sorted(by_len):
            idx = by_len[key]
            exs = [task.examples[i] for i in idx]
            noise = embedding_noise(exs, key[1], self.bridge.W_E.detach())
            out.append(make_bucket(np.array(idx), exs, noise, self.device, _Bucket))
        return out

    def _examples_per_pass(self, b: _Bucket) -> int:
        return min(len(b.index), self.max_rows)

    def _n_passes(self, b: _Bucket, n_cond: int) -> int:
        if n_cond == 0:
            return 0
        e = self._examples_per_pass(b)
        per = max(1, self.max_rows // e)
        return -(-n_cond // per) * -(-len(b.index) // e)

    def _chunks(self, b: _Bucket, n_cond: int):
        e = self._examples_per_pass(b)
        per = max(1, self.max_rows // e)
        for c_lo in range(0, n_cond, per):
            for e_lo in range(0, len(b.index), e):
                yield c_lo, min(n_cond, c_lo + per), e_lo, min(len(b.index), e_lo + e)

    def _forward(
        self,
        tokens: torch.Tensor,
        hooks: list,
        noise: torch.Tensor | None = None,
        read: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits at the metric positions of a forward pass with scoped hooks: the last
        position ([rows, V]) or, with ``read`` [rows, K], those K positions per row
        ([rows, K, V]). ``noise`` [rows, pos, d_model] is added to the embeddings first (its
        hook runs before every other one).

        Only the metric positions are unembedded: with a 50k vocabulary that saves about a
        third of the pass and the [rows, pos, vocab] logits tensor (1.2 GB for 256 rows of
        24 tokens)."""
        if noise is not None:
            hooks = [(EMBED_HOOK, _add(noise)), *hooks]
        if self.classifier:  # [rows, labels], read by the model at its pooling position
            with self.bridge.hooks(fwd_hooks=hooks):
                return self.bridge(tokens).float()
        cut = _last_position if read is None else _positions(read)
        with self.bridge.hooks(fwd_hooks=[*hooks, (UNEMBED_IN, cut)]):
            logits = self.bridge(tokens)
        return logits[:, -1, :].float() if read is None else logits.float()

    def _pattern_forward(self, tokens: torch.Tensor, hooks: list, noise, read=None):
        """:meth:`_forward` for passes that replace attention patterns. Attention that runs
        inside a wrapped HF module fires ``hook_pattern`` after the fact and discards edits
        (transformer_lens warns); that would measure nothing, so it is an error instead."""
        import warnings

        from causal_mi.models.encoders import EncoderPatchError

        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=_PATTERN_DISCARDED, category=UserWarning)
            try:
                return self._forward(tokens, hooks, noise, read)
            except EncoderPatchError as exc:
                raise InputError(str(exc), file=self.model.source) from None
            except UserWarning as exc:
                raise InputError(
                    f"{_PATTERN_UNSUPPORTED} (transformer_lens: {exc})", file=self.model.source
                ) from None

    def _baselines(self, b: _Bucket, conditions: Sequence[Condition], metric: Metric):
        """Clean and corrupt runs over the bucket, caching the hooks that sources read."""
        need: dict[str, set[str]] = {"clean": set(), "corrupt": set()}
        for cond in conditions:
            for p in cond.patches:
                if p.source in ("clean", "corrupt"):
                    need[p.source].add(self._hook(p.read_hook))
                elif p.source == "mean":
                    need["corrupt"].add(self._hook(p.read_hook))
        cache: dict = {}
        last: dict[str, torch.Tensor] = {}
        for base in ("clean", "corrupt"):
            tokens = getattr(b, base)
            store: dict[str, list[torch.Tensor]] = {h: [] for h in sorted(need[base])}
            parts = []
            noise = b.noise if base == "corrupt" else None
            for lo in range(0, tokens.shape[0], self.max_rows):
                hi = lo + self.max_rows
                hooks = [(h, _capture(store[h])) for h in store]
                rows_noise = None if noise is None else noise[lo:hi]
                read = None if b.read is None else b.read[base][lo:hi]
                parts.append(self._forward(tokens[lo:hi], hooks, rows_noise, read))
            last[base] = torch.cat(parts)
            cache[base] = {h: torch.cat(v) for h, v in store.items()}
        cache["mean"] = {h: v.mean(dim=0, keepdim=True) for h, v in cache["corrupt"].items()}
        first = last["clean"] if last["clean"].dim() == 2 else last["clean"][:, 0]
        clean_logp = torch.log_softmax(first, dim=-1)
        m_clean = metric(last["clean"], b.answer, b.wrong, clean_logp)
        m_corrupt = metric(last["corrupt"], b.answer, b.wrong, clean_logp)
        return cache, m_clean, m_corrupt, clean_logp

    def _patched(
        self,
        b: _Bucket,
        conds: Sequence[Condition],
        e_lo: int,
        e_hi: int,
        cache: dict,
        recorded: dict,
        metric: Metric,
        clean_logp: torch.Tensor,
    ):
        """Metric values [len(conds), e_hi - e_lo] and recordings of the conditions; runs
        whose clean and corrupt prompts differ in length go in one pass per base."""
        if b.clean.shape[1] == b.corrupt.shape[1]:
            return self._pass(b, conds, e_lo, e_hi, cache, recorded, metric, clean_logp)
        m = torch.zeros(len(conds), e_hi - e_lo, dtype=torch.float64)
        captured: dict[str, torch.Tensor] = {}
        for base in ("clean", "corrupt"):
            idx = [i for i, c in enumerate(conds) if c.base == base]
            if idx:
                part, rec = self._pass(
                    b, [conds[i] for i in idx], e_lo, e_hi, cache, recorded, metric, clean_logp
                )
                m[idx] = part.to(m.dtype)
                captured.update(rec)
        return m, captured

    def _pass(
        self,
        b: _Bucket,
        conds: Sequence[Condition],
        e_lo: int,
        e_hi: int,
        cache: dict,
        recorded: dict,
        metric: Metric,
        clean_logp: torch.Tensor,
    ):
        from causal_mi.engine.rows import patch_rows

        n_e = e_hi - e_lo
        tokens = torch.cat([getattr(b, c.base)[e_lo:e_hi] for c in conds])
        ops: dict[str, list[tuple[slice, Patch, str]]] = {}
        recs: dict[str, list[tuple[slice, str]]] = {}
        for ci, cond in enumerate(conds):
            rows = slice(ci * n_e, (ci + 1) * n_e)
            for p in cond.patches:
                ops.setdefault(self._hook(p.hook), []).append((rows, p, cond.base))
            for key, h in cond.record:
                recs.setdefault(self._hook(h), []).append((rows, key))
        captured: dict[str, torch.Tensor] = {}
        current: dict[str, torch.Tensor] = {}  # this pass's values of ``minus`` hooks
        minus_hooks = {p.minus for c in conds for p in c.patches if p.minus}
        L = b.length
        expand, grouped = self._grouped_hooks(set(ops) | set(recs))

        def source(p: Patch, act_rows: torch.Tensor, rows: slice) -> torch.Tensor:
            if p.source == "zero":
                value = torch.zeros_like(act_rows)
            elif p.source == "mean":
                value = _per_query_head(cache["mean"][self._hook(p.read_hook)], act_rows)
                value = value.expand_as(act_rows)
            elif p.source == "recorded":
                value = recorded[p.recording][b.key][e_lo:e_hi]
            else:
                value = cache[p.source][self._hook(p.read_hook)][e_lo:e_hi]
            value = _per_query_head(value, act_rows)
            if p.minus:
                value = value - current[p.minus][rows]
            return value

        def make(hook_name: str):
            def fn(act: torch.Tensor, hook) -> torch.Tensor:
                if hook_name in expand:  # grouped key/value: one copy per query head
                    act = act.repeat_interleave(self.kv.group, dim=2)
                if hook_name in ops:
                    act = act.clone()
                    for rows, p, base in ops[hook_name]:
                        if b.aligned and not any(isinstance(q, Role) for q, _ in p.cells):
                            mask = _mask(p, act.shape, L, act.device)
                            act[rows] = torch.where(mask, source(p, act[rows], rows), act[rows])
                        else:  # roles, or prompts of different lengths: per-row positions
                            act[rows] = patch_rows(
                                *self._mapped(p, cache, act), act[rows], base, b, e_lo, e_hi,
                                recorded, current[p.minus][rows] if p.minus else None,
                            )  # fmt: skip
                for rows, key in recs.get(hook_name, ()):
                    captured[key] = act[rows].detach().clone()
                if hook_name in minus_hooks:
                    current[hook_name] = act
                return act

            return fn

        hooks = [(h, make(h)) for h in sorted(set(ops) | set(recs) | minus_hooks | expand)]
        noise = rows_noise(b, conds, e_lo, e_hi)
        read = None if b.read is None else torch.cat([b.read[c.base][e_lo:e_hi] for c in conds])
        with ungrouped(self.kv, grouped):
            if any(heads_first(h) for h in ops):
                logits = self._pattern_forward(tokens, hooks, noise, read)
            else:
                logits = self._forward(tokens, hooks, noise, read)
        reps = (len(conds),) + (1,) * (b.answer.dim() - 1)
        answer = b.answer[e_lo:e_hi].repeat(*reps)
        wrong = b.wrong[e_lo:e_hi].repeat(*reps)
        ref = clean_logp[e_lo:e_hi].repeat(len(conds), 1)
        m = metric(logits, answer, wrong, ref).reshape(len(conds), n_e)
        return m, captured

    def _mapped(self, p: Patch, cache: dict, act: torch.Tensor) -> tuple[Patch, dict]:
        """``p`` reading its source at the bridge hook the plan's name maps to, and the
        source activations of that hook (a grouped key/value expanded per query head)."""
        hook = self._hook(p.read_hook)
        view = {
            src: {hook: _per_query_head(vals[hook], act)}
            for src, vals in cache.items()
            if isinstance(vals, dict) and hook in vals
        }
        return dataclasses.replace(p, read=hook), view

    def _grouped_hooks(self, touched: set[str]) -> tuple[set[str], set[int]]:
        """(key and value hooks to expand per query head, their layers) for a pass touching
        ``touched`` hooks on a grouped-query model; refuses where the bridge cannot."""
        if self.kv is None:
            return set(), set()
        layers = self.kv.expand_layers(
            {la for h in touched if (la := grouped_layer(h)) is not None}
        )
        if layers is None:
            raise InputError(
                GQA_UNSUPPORTED.format(cls=self.kv.bridge_class), file=self.model.source
            )
        names = {self._hook(layer_hook(la, "k")) for la in layers}
        return names | {layer_hook(la, "v") for la in layers}, layers


class _Baselines:
    """The clean and corrupt runs of one bucket, computed only when something needs them.

    Their metric values are cache cells of their own (the unpatched conditions ``clean`` and
    ``corrupt``), so a fully cached run performs no forward pass at all; the activations that
    patch sources read (``cache``) and the clean log-probabilities (``logp``) run the two
    passes on first use."""

    def __init__(self, engine: Engine, b: _Bucket, conds, metric: Metric, ckpt, ex_keys):
        self.engine, self.b, self.conds, self.metric = engine, b, conds, metric
        self.ckpt, self.ex_keys = ckpt, ex_keys
        self._run: tuple | None = None

    def _computed(self) -> tuple:
        if self._run is None:
            self._run = self.engine._baselines(self.b, self.conds, self.metric)
        return self._run

    @property
    def cache(self) -> dict:
        return self._computed()[0]

    @property
    def logp(self) -> torch.Tensor:
        return self._computed()[3]

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        keys = [condition_key(Condition(base)) for base in ("clean", "corrupt")]
        saved = self.ckpt.lookup(keys, self.ex_keys, [(), ()]) if self.ckpt else None
        if saved is None:
            _, m_clean, m_corrupt, _ = self._computed()
            m = torch.stack([m_clean, m_corrupt])
            if self.ckpt:
                self.ckpt.store(keys, self.ex_keys, m, [(), ()], {})
        else:
            m = saved[0]
        return m[0].numpy(), m[1].numpy()
