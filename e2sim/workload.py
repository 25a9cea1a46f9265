"""Typed workloads: a CNN as an ordered list of layers with per-sample shapes, plus dataset and schedule.

A workload file either names a bundled model builder (``model: resnet74``) or lists its layers
explicitly (``model: custom`` with ``layers:``). Either way the result is a :class:`Workload` whose layers
carry everything the counts stage needs; nothing downstream re-derives shapes. This module holds the types
only: ``e2sim.workload_files`` reads files and runs the builders (``e2sim.builders``), which import these
types, so the dependency runs one way.
"""
from __future__ import annotations

from dataclasses import field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from .records import Check, Int, Real, Record, record

PKG_ROOT = Path(__file__).resolve().parent.parent

LayerKind = Literal[
    "conv", "conv_transpose", "linear", "batchnorm", "relu", "maxpool", "avgpool", "add", "mul", "lstm", "gru",
    "sigmoid", "matmul",
]
# Layers whose forward is a GEMM on the PE array (have MACs; all but matmul have weights).
GEMM_KINDS = ("conv", "conv_transpose", "linear", "lstm", "gru", "matmul")
RNN_GATES = {"lstm": 4, "gru": 3}  # gate blocks of H rows in W_ih / W_hh (torch.nn.LSTM / GRU layout)
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
Dim = Annotated[Int, Check(ge=1, le=MAX_DIM)]
Shape3 = tuple[Dim, Dim, Dim]  # (C, H, W) per sample
Pair = tuple[Dim, Dim]
BatchSize = Annotated[Int, Check(ge=1, le=MAX_BATCH)]
Iterations = Annotated[Int, Check(ge=1, le=MAX_ITERATIONS)]


def _elems(shape: tuple[int, int, int]) -> int:
    return shape[0] * shape[1] * shape[2]
NonNeg = Annotated[Int, Check(ge=0, le=MAX_DIM)]
Name = Annotated[str, Check(min_length=1)]


# Records (e2sim.records): immutable dataclasses that pydantic validates when a file is parsed; a workload
# read from the parse cache is used without importing pydantic.
@record
class Layer(Record):
    """One layer. Shapes are per sample and per step (see ``steps``), (channels, height, width); linear,
    lstm and gru layers use (features, 1, 1); a matmul uses in_shape (batch, M, K) for its first operand A
    and out_shape (batch, M, N), its second operand B being (batch, K, N)."""

    name: Name
    kind: LayerKind
    in_shape: Shape3
    out_shape: Shape3
    block: str | None = None
    role: Role = "main"
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: tuple[NonNeg, NonNeg] = (0, 0)
    dilation: Pair = (1, 1)
    # conv_transpose: extra rows/columns on the bottom/right of the output (torch's output_padding).
    output_padding: tuple[NonNeg, NonNeg] = (0, 0)
    groups: Dim = 1
    bias: bool = False
    # Number of inputs of an `add` or `mul` layer (a residual add has 2).
    n_inputs: Annotated[Int, Check(ge=1, le=64)] = 1
    # How many times the layer runs per sample: the time steps of an lstm/gru, the positions a linear
    # layer is applied to (the leading dimensions of an N-D input), the frames of a sequence folded into
    # the batch dimension. Every count is per step times steps.
    steps: Dim = 1
    # False where the layer's input needs no gradient (nothing trainable upstream, as for the network
    # input): no `bwd_input` GEMM.
    needs_input_grad: bool = True
    # False where the weights are frozen (no weight gradient, no update). For a matmul: whether its second
    # operand B (an activation) needs a gradient; that gradient is the matmul's `bwd_weight` GEMM.
    needs_weight_grad: bool = True
    # lstm/gru: hidden size; the input size is in_shape[0].
    hidden: Dim | None = None
    # lstm/gru: whether the initial hidden state needs a gradient (it comes from an earlier call, as the
    # state the shared SLU gate LSTM passes from gate to gate); False for a sequence started from zeros.
    state_needs_grad: bool = True
    # Name of the layer that owns this layer's weights (one LSTM shared by all SLU gates): such a layer
    # reads the shared weights and accumulates into their gradient but has no update of its own.
    weights_from: str | None = None

    def __post_init__(self) -> None:
        cin, hin, win = self.in_shape
        cout, hout, wout = self.out_shape
        k = self.kind
        if k in ("conv", "conv_transpose"):
            if cin % self.groups or cout % self.groups:
                raise ValueError(f"groups={self.groups} must divide in and out channels ({cin}, {cout})")
            # torch.nn.Conv2d / ConvTranspose2d output sizes, with the dilated (effective) kernel.
            geo = tuple(zip((hin, win), self.padding, self.effective_kernel, self.stride, self.output_padding))
            if k == "conv":
                exp = tuple((size + 2 * p - ek) // s + 1 for size, p, ek, s, _ in geo)
            else:
                exp = tuple((size - 1) * s - 2 * p + ek + op for size, p, ek, s, op in geo)
            if exp != (hout, wout):
                raise ValueError(
                    f"out_shape spatial {hout}x{wout} does not follow from in {hin}x{win}, kernel "
                    f"{self.kernel}, stride {self.stride}, padding {self.padding}, dilation {self.dilation}"
                    + (f", output_padding {self.output_padding}" if k == "conv_transpose" else "")
                    + f" (expected {exp[0]}x{exp[1]})"
                )
        elif k in ("linear", "lstm", "gru"):
            if (hin, win) != (1, 1) or (hout, wout) != (1, 1):
                raise ValueError(f"{k} layers take (features, 1, 1) shapes")
            if k in RNN_GATES and (self.hidden is None or cout != self.hidden):
                raise ValueError(f"{k} needs hidden equal to out_shape[0]")
        elif k == "matmul":
            if (cin, hin) != (cout, hout):
                raise ValueError(f"matmul: in_shape (batch, M, K) {self.in_shape} and out_shape (batch, M, N) "
                                 f"{self.out_shape} differ in batch or M")
        elif k in ("maxpool", "avgpool"):
            if cin != cout:
                raise ValueError("pooling keeps the channel count")
        elif self.in_shape != self.out_shape:
            raise ValueError(f"{k} layers keep the shape (in {self.in_shape}, out {self.out_shape})")
        if k not in ("add", "mul") and self.n_inputs != 1:
            raise ValueError("n_inputs applies to add and mul layers only")
        if k not in ("conv", "conv_transpose") and self.dilation != (1, 1):
            raise ValueError("dilation applies to conv layers only")
        if k != "conv_transpose" and self.output_padding != (0, 0):
            raise ValueError("output_padding applies to conv_transpose layers only")
        if self.role in ("main", "shortcut", "gate") and self.block is None and self.role != "gate":
            raise ValueError(f"role {self.role!r} needs a block")
        for what, shape in (("in_shape", self.in_shape), ("out_shape", self.out_shape)):
            if _elems(shape) * self.steps > MAX_LAYER_ELEMS:
                raise ValueError(f"{what} {shape} x {self.steps} steps holds {_elems(shape) * self.steps:,} "
                                 f"elements per sample (at most 2^36)")
        if self.weight_elems > MAX_LAYER_ELEMS:
            raise ValueError(f"{self.weight_elems:,} weights (at most 2^36)")
        if self.fwd_macs > MAX_LAYER_MACS:
            raise ValueError(f"{self.fwd_macs:,} forward MACs per sample (at most 2^40)")

    @property
    def fwd_macs(self) -> int:
        """Forward MACs per sample (GEMM kinds; 0 for the others). counts.py has the full rules."""
        cin, cout = self.in_shape[0], self.out_shape[0]
        kk = self.kernel[0] * self.kernel[1]
        if self.kind == "conv":
            per_step = _elems(self.out_shape) * (cin // self.groups) * kk
        elif self.kind == "conv_transpose":
            per_step = _elems(self.in_shape) * (cout // self.groups) * kk
        elif self.kind == "linear":
            per_step = cin * cout
        elif self.kind == "matmul":
            per_step = _elems(self.in_shape) * self.out_shape[2]
        elif self.kind in RNN_GATES:
            h = self.hidden or cout
            per_step = RNN_GATES[self.kind] * h * (cin + h)
        else:
            return 0
        return per_step * self.steps

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """The kernel's extent on the input, (k - 1) * dilation + 1 per dimension."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    @property
    def weight_elems(self) -> int:
        """Trainable parameters (weights plus bias / affine)."""
        cin, cout = self.in_shape[0], self.out_shape[0]
        if self.kind in ("conv", "conv_transpose"):
            w = cout * (cin // self.groups) * self.kernel[0] * self.kernel[1]
            return w + (cout if self.bias else 0)
        if self.kind == "linear":
            return cin * cout + (cout if self.bias else 0)
        if self.kind == "batchnorm":
            return 2 * cin
        if self.kind in RNN_GATES:
            # torch.nn.LSTM / GRU: W_ih (G*H x I), W_hh (G*H x H), b_ih, b_hh (G*H each), G = 4 / 3.
            g, h = RNN_GATES[self.kind], self.hidden or cout
            return g * h * (cin + h) + 2 * g * h
        return 0


def sample_work(layers) -> int:
    """Forward MACs plus input, output and weight elements of ``layers`` for one sample: the size bound."""
    return sum(L.fwd_macs + (_elems(L.in_shape) + _elems(L.out_shape)) * L.steps + L.weight_elems for L in layers)


@record
class Block(Record):
    """A residual block. `gated` blocks are the ones selective layer update may skip."""

    name: str
    stage: Annotated[Int, Check(ge=0, le=64)]
    gated: bool


Images = Annotated[Int, Check(ge=1, le=MAX_IMAGES)]


@record
class Dataset(Record):
    name: str
    classes: Dim
    train_images: Images
    test_images: Images
    image_shape: Shape3

    def __post_init__(self) -> None:
        # The bundled builders' stems widen the image to 32 channels at full resolution: bound the pixels
        # so that layer stays within MAX_LAYER_ELEMS (a 2^14 x 2^14 image), and the channels likewise.
        _, h, w = self.image_shape
        if h * w > 2**28 or _elems(self.image_shape) > MAX_LAYER_ELEMS:
            raise ValueError(f"image_shape {self.image_shape}: at most 2^28 pixels (16384 x 16384) and 2^36 "
                             f"elements per image")


DATASETS: dict[str, Dataset] = {
    # Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images": 50,000 train / 10,000 test.
    "cifar10": Dataset(name="cifar10", classes=10, train_images=50_000, test_images=10_000, image_shape=(3, 32, 32)),
    "cifar100": Dataset(name="cifar100", classes=100, train_images=50_000, test_images=10_000,
                        image_shape=(3, 32, 32)),
}


@record
class Schedule(Record):
    """Training schedule; defaults are E2-Train's (../shared/reference/e2train-paper.md §6)."""

    iterations: Iterations = 64_000
    # A learning rate above 10 or a weight decay above 1 diverges at once: typos, not settings.
    lr: Annotated[Real, Check(gt=0, le=10)] = 0.1
    lr_milestones: Annotated[tuple[Iterations, ...], Check(max_length=64)] = (32_000, 48_000)
    lr_decay: Annotated[Real, Check(gt=0, le=1)] = 0.1
    momentum: Annotated[Real, Check(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[Real, Check(ge=0, le=1)] = 1e-4

    def __post_init__(self) -> None:
        m = self.lr_milestones
        if any(b <= a for a, b in zip(m, m[1:])):
            raise ValueError(f"lr_milestones {list(m)} must be strictly increasing")


@record
class WorkloadFile(Record):
    """What a workload YAML file holds. ``model``: a bundled builder's name, or 'custom' with explicit
    layers."""

    name: Name
    model: Name
    schema_version: Literal[1] = 1
    dataset: str | Dataset = "cifar10"
    batch_size: BatchSize = 128
    schedule: Schedule = field(default_factory=Schedule)
    layers: Annotated[list[Layer], Check(max_length=10_000)] | None = None
    blocks: Annotated[list[Block], Check(max_length=10_000)] | None = None


@record
class Workload(Record):
    """A resolved workload: model layers, blocks, dataset, batch size and schedule."""

    name: str
    model: str
    dataset: Dataset
    batch_size: BatchSize
    layers: tuple[Layer, ...]
    schedule: Schedule = field(default_factory=Schedule)
    blocks: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a workload needs at least one layer")
        by_name = {layer.name: layer for layer in self.layers}  # dicts, not list scans: 600+ layers with gates
        if len(by_name) != len(self.layers):
            seen: set[str] = set()
            dup = {layer.name for layer in self.layers if layer.name in seen or seen.add(layer.name)}
            raise ValueError(f"duplicate layer names: {sorted(dup)}")
        block_names = {b.name for b in self.blocks}
        if len(block_names) != len(self.blocks):
            raise ValueError("duplicate block names")
        for i, layer in enumerate(self.layers):
            if layer.block is not None and layer.block not in block_names:
                raise ValueError(f"layers.{i}.block: {layer.block!r} is not one of the declared blocks")
            if layer.weights_from is not None:
                owner = by_name.get(layer.weights_from)
                if owner is None or owner.weights_from is not None or owner.kind != layer.kind:
                    raise ValueError(f"layers.{i}.weights_from: {layer.weights_from!r} is not a layer of the "
                                     f"same kind that owns its weights")
        first = self.layers[0]
        # A first conv reads the image (possibly concatenated with itself along channels, in an imported
        # model); other first layers (linear on the flattened image, lstm on rows) see other shapes.
        if first.kind == "conv" and first.steps == 1 and first.in_shape[1:] != self.dataset.image_shape[1:]:
            raise ValueError(
                f"first layer input {first.in_shape} differs from the dataset image shape "
                f"{self.dataset.image_shape}"
            )
        work = sample_work(self.layers)
        if work > MAX_SAMPLE_WORK:
            raise ValueError(f"layers: {work:,} forward MACs plus tensor and weight elements per sample (at most "
                             f"2^42, ~100x VGG-16 at 224x224)")

    @cached_property
    def layer_index(self) -> dict[str, int]:
        return {layer.name: i for i, layer in enumerate(self.layers)}

    @property
    def gated_blocks(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.gated)

    def forward_macs_per_sample(self) -> int:
        """Forward MACs of one sample (the closed forms of ``Layer.fwd_macs``, equal to the counts')."""
        return sum(layer.fwd_macs for layer in self.layers)
