"""The hypothesis file schema (SPEC 2), as pydantic models: pure, serialisable data."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

METRICS = ("logit_diff", "logprob", "prob", "prob_diff", "kl")
ABLATIONS = ("resample", "mean", "zero")
CORRECTIONS = ("holm", "bonferroni", "bh", "none")
INTERVALS = ("bca", "percentile")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseSpec(_Strict):
    """Gaussian noise on the embeddings as the corruption (causal tracing, Meng et al. 2022):
    the corrupt run is the clean prompt with noise of std ``scale`` x std(W_E entries) added
    to the token + position embeddings at ``positions``. Each example's draw is seeded by
    ``seed`` and the example's index, so reruns and any batching give the same noise."""

    positions: int | str | Annotated[list[int | str], Field(min_length=1)]
    scale: float = Field(3.0, gt=0, allow_inf_nan=False)
    seed: int = 0

    @property
    def position_list(self) -> tuple[int | str, ...]:
        """Positions and role names (a role noises every token it covers)."""
        if isinstance(self.positions, (int, str)):
            return (self.positions,)
        return tuple(self.positions)


class SplitSpec(_Strict):
    """A task file's rows split once, by ``seed``, into a calibration part (``calibrate``: its
    share) and a verification part; ``part`` picks which one this file runs on, so
    thresholds written on one part are verified on rows they were not chosen on."""

    calibrate: float = Field(gt=0.0, lt=1.0)
    part: Literal["verify", "calibrate"] = "verify"
    seed: int = 0


class TaskSpec(_Strict):
    """Where the prompts come from: a built-in generator or a JSONL file of pairs, and
    optionally ``noise`` (then the corrupt prompt is the clean one with noised embeddings)."""

    generator: str | None = None
    file: str | None = None
    n: int = Field(200, ge=1, le=1_000_000)
    seed: int = 0
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)
    noise: NoiseSpec | None = None
    split: SplitSpec | None = None  # task files only: a held-out part (see SplitSpec)
    # The role at which the metric is read (default: END, the last prompt token).
    read_at: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class NodeAt(_Strict):
    """A node restricted to positions or token roles: ``{at: L1H3, pos: -1}``,
    ``pos: [3, 4]``, ``pos: END`` or ``pos: [S2, END]``."""

    at: str
    pos: int | str | list[int | str] | None = None


class Hypothesis(_Strict):
    """A hypothesis file, validated but not yet resolved against a model."""

    version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    model: str = Field(min_length=1)
    task: TaskSpec
    metric: Literal["logit_diff", "logprob", "prob", "prob_diff", "kl"] = "logit_diff"
    ablation: Literal["resample", "mean", "zero"] = "resample"
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    correction: Literal["holm", "bonferroni", "bh", "none"] = "holm"
    bootstrap: int = Field(2000, ge=200, le=100_000)  # at least; more when levels need it
    bootstrap_seed: int = 0  # the resampling seed, separate from the task's seed
    interval: Literal["bca", "percentile"] = "bca"
    gap_margin: float = Field(0.5, ge=0.0, lt=1.0)  # the gap gate: lower bound >= margin x G
    nodes: dict[str, str | NodeAt] = Field(default_factory=dict)
    edges: list[str] = Field(default_factory=list)
    claims: list[str] = Field(default_factory=list)
    variables: dict[str, Any] | None = None  # discretized variables for properties (SPEC 5)
    properties: list[Any] | None = None

    @field_validator("nodes", "edges", "claims", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any, info: Any) -> Any:
        # ``edges:`` with nothing under it is YAML null; read it as "none declared".
        if v is None:
            return {} if info.field_name == "nodes" else []
        return v

    @field_validator("model")
    @classmethod
    def _model_ref(cls, v: str) -> str:
        if not v.startswith(("zoo:", "hf:", "path:")):
            raise ValueError(
                f"model '{v}' must start with zoo:, hf: or path: "
                "(zoo:<name> | hf:<hub id or local dir> | path:<dir>)"
            )
        return v
