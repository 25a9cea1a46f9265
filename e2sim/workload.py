"""Typed workloads: a CNN as an ordered list of layers with per-sample shapes, plus dataset and schedule.

A workload file either names a bundled model builder (``model: resnet74``) or lists its layers
explicitly (``model: custom`` with ``layers:``). Either way the result is a :class:`Workload` whose layers
carry everything the counts stage needs; nothing downstream re-derives shapes.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import Int, Real, bundled_or_path, format_validation_error, load_model, validate
from .errors import E2simError

PKG_ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_DIR = PKG_ROOT / "workloads"

LayerKind = Literal[
    "conv", "linear", "batchnorm", "relu", "maxpool", "avgpool", "add", "lstm", "sigmoid",
]
# Layers whose forward is a GEMM on the PE array (have weights and MACs).
GEMM_KINDS = ("conv", "linear", "lstm")
# Where a layer sits in its residual block: SLU skips `main` layers of a skipped block; the `shortcut`
# (downsample) path always runs, as in SkipNet's recurrent-gate ResNets; `gate` layers are the SLU gates.
Role = Literal["stem", "main", "shortcut", "gate", "head"]

# Sizes are bounded so that every count fits int64 (numpy wraps around silently past it). A dimension of
# 2^20 is far beyond any CNN; per layer and sample, a tensor holds at most 2^36 elements and a forward pass
# at most 2^40 MACs; per sample, a whole network at most 2^42 (MACs plus tensor and weight elements:
# VGG-16 at 224x224 is ~2^34); a batch at most 2^14 samples. Per-iteration counts then stay below ~2^61.
MAX_DIM = 2**20
MAX_LAYER_ELEMS = 2**36
MAX_LAYER_MACS = 2**40
MAX_SAMPLE_WORK = 2**42
MAX_BATCH = 2**14
# A training schedule of a billion iterations is ~15,000x E2-Train's 64k; more is a typo, not a run.
MAX_ITERATIONS = 10**9
MAX_IMAGES = 10**10
Dim = Annotated[Int, Field(ge=1, le=MAX_DIM)]
Shape3 = Annotated[tuple[Dim, Dim, Dim], Field(description="(C, H, W) per sample")]
Pair = tuple[Dim, Dim]
BatchSize = Annotated[Int, Field(ge=1, le=MAX_BATCH)]
Iterations = Annotated[Int, Field(ge=1, le=MAX_ITERATIONS)]


def _elems(shape: tuple[int, int, int]) -> int:
    return shape[0] * shape[1] * shape[2]


class _Strict(BaseModel):
    # defer_build: a model's validator is built on its first validation, not at import (start-up time; a
    # workload read from the parse cache is never validated again).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Layer(_Strict):
    """One layer. Shapes are per sample, (channels, height, width); a linear layer uses (features, 1, 1)."""

    name: str = Field(min_length=1)
    kind: LayerKind
    in_shape: Shape3
    out_shape: Shape3
    block: str | None = None
    role: Role = "main"
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: tuple[Annotated[Int, Field(ge=0, le=MAX_DIM)], Annotated[Int, Field(ge=0, le=MAX_DIM)]] = (0, 0)
    groups: Dim = 1
    bias: bool = False
    # Number of summed inputs of an `add` layer (a residual add has 2).
    n_inputs: Annotated[Int, Field(ge=1, le=64)] = 1
    # False where the layer's input needs no gradient (the network input): no `bwd_input` pass.
    needs_input_grad: bool = True
    # LSTM: hidden size; the input size is in_shape[0]. Gates run one step per block.
    hidden: Dim | None = None
    # Name of the layer that owns this layer's weights (one LSTM shared by all SLU gates): such a layer
    # reads the shared weights and accumulates into their gradient but has no update of its own.
    weights_from: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Layer:
        cin, hin, win = self.in_shape
        cout, hout, wout = self.out_shape
        k = self.kind
        if k == "conv":
            if cin % self.groups or cout % self.groups:
                raise ValueError(f"groups={self.groups} must divide in and out channels ({cin}, {cout})")
            exp = tuple(
                (size + 2 * p - kk) // s + 1
                for size, p, kk, s in zip((hin, win), self.padding, self.kernel, self.stride)
            )
            if exp != (hout, wout):
                raise ValueError(
                    f"out_shape spatial {hout}x{wout} does not follow from in {hin}x{win}, kernel "
                    f"{self.kernel}, stride {self.stride}, padding {self.padding} (expected {exp[0]}x{exp[1]})"
                )
        elif k in ("linear", "lstm"):
            if (hin, win) != (1, 1) or (hout, wout) != (1, 1):
                raise ValueError(f"{k} layers take (features, 1, 1) shapes")
            if k == "lstm" and (self.hidden is None or cout != self.hidden):
                raise ValueError("lstm needs hidden equal to out_shape[0]")
        elif k in ("maxpool", "avgpool"):
            if cin != cout:
                raise ValueError("pooling keeps the channel count")
        elif self.in_shape != self.out_shape:
            raise ValueError(f"{k} layers keep the shape (in {self.in_shape}, out {self.out_shape})")
        if k != "add" and self.n_inputs != 1:
            raise ValueError("n_inputs applies to add layers only")
        if self.role in ("main", "shortcut", "gate") and self.block is None and self.role != "gate":
            raise ValueError(f"role {self.role!r} needs a block")
        for what, shape in (("in_shape", self.in_shape), ("out_shape", self.out_shape)):
            if _elems(shape) > MAX_LAYER_ELEMS:
                raise ValueError(f"{what} {shape} holds {_elems(shape):,} elements per sample (at most 2^36)")
        if self.weight_elems > MAX_LAYER_ELEMS:
            raise ValueError(f"{self.weight_elems:,} weights (at most 2^36)")
        if self.fwd_macs > MAX_LAYER_MACS:
            raise ValueError(f"{self.fwd_macs:,} forward MACs per sample (at most 2^40)")
        return self

    @property
    def fwd_macs(self) -> int:
        """Forward MACs per sample (conv, linear, lstm; 0 for the others). counts.py has the full rules."""
        if self.kind == "conv":
            return _elems(self.out_shape) * (self.in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]
        if self.kind == "linear":
            return self.in_shape[0] * self.out_shape[0]
        if self.kind == "lstm":
            h = self.hidden or self.out_shape[0]
            return 4 * h * (self.in_shape[0] + h)
        return 0

    @property
    def weight_elems(self) -> int:
        """Trainable parameters (weights plus bias / affine)."""
        cin, cout = self.in_shape[0], self.out_shape[0]
        if self.kind == "conv":
            w = cout * (cin // self.groups) * self.kernel[0] * self.kernel[1]
            return w + (cout if self.bias else 0)
        if self.kind == "linear":
            return cin * cout + (cout if self.bias else 0)
        if self.kind == "batchnorm":
            return 2 * cin
        if self.kind == "lstm":
            # torch.nn.LSTM: W_ih (4H x I), W_hh (4H x H), b_ih, b_hh (4H each).
            h = self.hidden or cout
            return 4 * h * (cin + h) + 8 * h
        return 0


def sample_work(layers) -> int:
    """Forward MACs plus input, output and weight elements of ``layers`` for one sample: the size bound."""
    return sum(L.fwd_macs + _elems(L.in_shape) + _elems(L.out_shape) + L.weight_elems for L in layers)


class Block(_Strict):
    """A residual block. `gated` blocks are the ones selective layer update may skip."""

    name: str
    stage: Int = Field(ge=0, le=64)
    gated: bool


class Dataset(_Strict):
    name: str
    classes: Dim
    train_images: Annotated[Int, Field(ge=1, le=MAX_IMAGES)]
    test_images: Annotated[Int, Field(ge=1, le=MAX_IMAGES)]
    image_shape: Shape3

    @model_validator(mode="after")
    def _check(self) -> Dataset:
        # The bundled builders' stems widen the image to 32 channels at full resolution: bound the pixels
        # so that layer stays within MAX_LAYER_ELEMS (a 2^14 x 2^14 image), and the channels likewise.
        _, h, w = self.image_shape
        if h * w > 2**28 or _elems(self.image_shape) > MAX_LAYER_ELEMS:
            raise ValueError(f"image_shape {self.image_shape}: at most 2^28 pixels (16384 x 16384) and 2^36 "
                             f"elements per image")
        return self


# model_construct: these literals are valid (tests validate them), and validating at import costs start-up.
DATASETS: dict[str, Dataset] = {
    # Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images": 50,000 train / 10,000 test.
    "cifar10": Dataset.model_construct(name="cifar10", classes=10, train_images=50_000, test_images=10_000,
                                       image_shape=(3, 32, 32)),
    "cifar100": Dataset.model_construct(name="cifar100", classes=100, train_images=50_000, test_images=10_000,
                                        image_shape=(3, 32, 32)),
}


class Schedule(_Strict):
    """Training schedule; defaults are E2-Train's (../shared/reference/e2train-paper.md §6)."""

    iterations: Iterations = 64_000
    # A learning rate above 10 or a weight decay above 1 diverges at once: typos, not settings.
    lr: Real = Field(0.1, gt=0, le=10)
    lr_milestones: tuple[Iterations, ...] = Field((32_000, 48_000), max_length=64)
    lr_decay: Real = Field(0.1, gt=0, le=1)
    momentum: Real = Field(0.9, ge=0, lt=1)
    weight_decay: Real = Field(1e-4, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        m = self.lr_milestones
        if any(b <= a for a, b in zip(m, m[1:])):
            raise ValueError(f"lr_milestones {list(m)} must be strictly increasing")
        return self


class WorkloadFile(_Strict):
    """What a workload YAML file holds."""

    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    model: str = Field(min_length=1, description="bundled builder name, or 'custom' with explicit layers")
    dataset: str | Dataset = "cifar10"
    batch_size: BatchSize = 128
    schedule: Schedule = Field(default_factory=Schedule)
    layers: list[Layer] | None = Field(None, max_length=10_000)
    blocks: list[Block] | None = Field(None, max_length=10_000)


class Workload(_Strict):
    """A resolved workload: model layers, blocks, dataset, batch size and schedule."""

    name: str
    model: str
    dataset: Dataset
    batch_size: BatchSize
    schedule: Schedule = Field(default_factory=Schedule)
    layers: tuple[Layer, ...]
    blocks: tuple[Block, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Workload:
        if not self.layers:
            raise ValueError("a workload needs at least one layer")
        names = [layer.name for layer in self.layers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate layer names: {sorted(dup)}")
        block_names = {b.name for b in self.blocks}
        if len(block_names) != len(self.blocks):
            raise ValueError("duplicate block names")
        for i, layer in enumerate(self.layers):
            if layer.block is not None and layer.block not in block_names:
                raise ValueError(f"layers.{i}.block: {layer.block!r} is not one of the declared blocks")
            if layer.weights_from is not None:
                owner = next((o for o in self.layers if o.name == layer.weights_from), None)
                if owner is None or owner.weights_from is not None or owner.kind != layer.kind:
                    raise ValueError(f"layers.{i}.weights_from: {layer.weights_from!r} is not a layer of the "
                                     f"same kind that owns its weights")
        if self.layers[0].in_shape != self.dataset.image_shape:
            raise ValueError(
                f"first layer input {self.layers[0].in_shape} differs from the dataset image shape "
                f"{self.dataset.image_shape}"
            )
        work = sample_work(self.layers)
        if work > MAX_SAMPLE_WORK:
            raise ValueError(f"layers: {work:,} forward MACs plus tensor and weight elements per sample (at most "
                             f"2^42, ~100x VGG-16 at 224x224)")
        return self

    @cached_property
    def layer_index(self) -> dict[str, int]:
        return {layer.name: i for i, layer in enumerate(self.layers)}

    @property
    def gated_blocks(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.gated)

    def forward_macs_per_sample(self) -> int:
        from .counts import count

        c = count(self, batch_size=1)
        return int(c.macs[:, 0].sum())


def bundled_workloads() -> dict[str, Path]:
    """Names and paths of the workload files shipped in ``workloads/``."""
    return {p.stem: p for p in sorted(WORKLOAD_DIR.glob("*.yaml"))}


def resolve(spec: WorkloadFile, source: str = "<workload>") -> Workload:
    """Turn a workload file into a Workload, building the layers for a bundled model."""
    from .builders import BUILDERS

    if isinstance(spec.dataset, Dataset):
        dataset = spec.dataset
    elif spec.dataset in DATASETS:
        dataset = DATASETS[spec.dataset]
    else:
        raise E2simError(f"{source}: dataset: unknown dataset {spec.dataset!r} (known: {', '.join(DATASETS)})")
    if spec.model == "custom":
        if not spec.layers:
            raise E2simError(f"{source}: layers: model 'custom' needs a non-empty layers list")
        layers, blocks = list(spec.layers), list(spec.blocks or [])
    else:
        if spec.layers is not None or spec.blocks is not None:
            raise E2simError(f"{source}: layers: only model 'custom' may list layers (model is {spec.model!r})")
        if spec.model not in BUILDERS:
            raise E2simError(
                f"{source}: model: unknown model {spec.model!r} (known: custom, {', '.join(BUILDERS)})"
            )
        # Only the dataset reaches a builder: its classes or image shape may put a layer, or the whole
        # network, out of bounds; say so naming the dataset, not a layer the user never wrote.
        where = (f"{source}: dataset: model {spec.model!r} cannot be built for {dataset.classes} classes and "
                 f"image shape {list(dataset.image_shape)}")
        try:
            layers, blocks = BUILDERS[spec.model](classes=dataset.classes, image_shape=dataset.image_shape)
        except ValidationError as exc:
            raise E2simError(f"{where}: {format_validation_error(exc)}") from None
        if sample_work(layers) > MAX_SAMPLE_WORK:
            raise E2simError(f"{where}: {sample_work(layers):,} forward MACs plus tensor and weight elements per "
                             f"sample (at most 2^42, ~100x VGG-16 at 224x224)")
    data = dict(
        name=spec.name, model=spec.model, dataset=dataset, batch_size=spec.batch_size,
        schedule=spec.schedule, layers=layers, blocks=blocks,
    )
    return validate(Workload, data, source)


def load_workload(name_or_path: str | Path) -> Workload:
    """Load a bundled workload by name (``resnet74_cifar10``) or a workload YAML file by path."""
    if isinstance(name_or_path, Workload):
        return name_or_path
    from .parse_cache import cached_parse

    path = bundled_or_path("workload", name_or_path, bundled_workloads())
    return cached_parse(path, lambda: resolve(load_model(WorkloadFile, path), str(path)))
