"""PSG, predictive sign gradient descent (E2-Train §3.3; official code models/conv_efficient.py and the
defaults of main_all.py l.82-107, reference §3).

PSG covers every convolution (the first conv, the 1x1 downsample shortcuts and the SLU gates' 1x1 convs);
the FC classifier, batchnorms and the gate LSTM keep full-precision SGD (reference §3, "Which layers").
For a PSG conv:
- fwd: activations ``act`` bits x weights ``weight`` bits, fixed point (default 8 x 8);
- bwd_input: output gradient ``grad`` bits x weights. ``grad`` defaults to the run's precision's gradient
  (``--precision``): fp32 gives the official code's unquantized 32-bit floating-point error, fp16 16-bit
  floating point, int8 / int16 8- / 16-bit fixed point. PSG is applied on top of the chosen precision, so
  it never widens a gradient the precision already narrowed (with a 32-bit error, PSG at int8 would cost
  more than plain int8 training). An explicit ``grad`` of 32 is floating point, a narrower one fixed point
  (floating point if it equals a floating-point precision's gradient width);
- bwd_weight becomes two items: the predictor (tag ``psg_predict``) over the whole weight gradient from the
  MSB parts (input ``msb_act`` bits x output gradient ``msb_grad`` bits, fixed point; ``msb_grad`` defaults
  to 16 bits, or ``grad`` if that is narrower), plus the
  full-precision weight gradient (``act`` x ``grad`` bits, tag ``psg_fallback``) for the fraction F of
  entries whose predicted magnitude is below the threshold: Plan.scale = F. Each entry is an independent
  reduction, so recomputing a fraction F of the entries is F of the pass's work;
- update (tag ``sign_update``): w <- w - lr * sign(g). Element ops per parameter: 3 (|g_msb| >= tau compare
  selecting predictor or fallback gradient, sign, the +-lr add); it reads the weight and the gradient and
  writes the weight; no momentum or weight-decay state (SignSGD). SGD with momentum costs 3 ops too but
  also reads and writes the momentum buffer. (The official code applies its momentum optimizer to the
  signs; e2sim follows the paper's SignSGD description.)
The MSB weight width (``msb_weight``) is not an operand of the weight-gradient predictor (input x output
gradient); it only enters the code's predictive forward, which is off by default, so it changes no cost.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, replace

import numpy as np

from ..errors import E2simError
from ..plan import Plan, preset
from ..records import Record, record
from ..workload import Workload
from ._plan_ops import BWD_IN, BWD_W, FWD, UPD, rebase, set_items, tensor_bits, with_update_rule

# Element ops per parameter of the PSG sign update (see the module docstring).
PSG_UPDATE_OPS_PER_PARAM = 3


def check_bits(value: int, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or not (1 <= int(value) <= 32):
        raise E2simError(f"{what}: bit-width must be an integer in 1..32, got {value!r}")
    return int(value)


# The official code's predictor gradient width (reference §3); capped at the full gradient width.
MSB_GRAD_BITS = 16


@record
class PSGBits(Record):
    """Bit-widths of PSG; defaults are the official code's (reference §3). ``grad`` and ``msb_grad`` left at
    None follow the run's precision (see the module docstring); ``resolve`` fixes them."""

    act: int = 8
    weight: int = 8
    grad: int | None = None
    msb_act: int = 4
    msb_weight: int = 4
    msb_grad: int | None = None

    def __post_init__(self):
        for name in ("act", "weight", "grad", "msb_act", "msb_weight", "msb_grad"):
            if getattr(self, name) is not None:
                check_bits(getattr(self, name), f"--psg-bits {name}")
        for msb, full in (("msb_act", "act"), ("msb_weight", "weight"), ("msb_grad", "grad")):
            m, f = getattr(self, msb), getattr(self, full)
            if m is not None and f is not None and m > f:
                raise E2simError(f"--psg-bits {msb}: the predictor's MSB part ({m} bits) "
                                 f"cannot be wider than the full width {full} ({f} bits)")

    def resolve(self, precision: str) -> tuple[PSGBits, bool]:
        """The bit-widths on top of ``precision`` (every field set) and whether the gradient is floating
        point."""
        _, prec_grad, prec_float = preset(precision)
        grad = prec_grad if self.grad is None else self.grad
        grad_float = grad == 32 or (prec_float and grad == prec_grad)
        msb_grad = min(MSB_GRAD_BITS, grad) if self.msb_grad is None else self.msb_grad
        if msb_grad > grad:
            raise E2simError(f"--psg-bits msb_grad: the predictor's MSB part ({msb_grad} bits) cannot be wider "
                             f"than the {precision} gradient ({grad} bits)")
        return replace(self, grad=grad, msb_grad=msb_grad), grad_float

    @classmethod
    def parse(cls, text: str) -> PSGBits:
        """``act=8,weight=8,grad=32,msb_act=4,msb_weight=4,msb_grad=16`` (any subset; grad and msb_grad
        default to the precision's gradient width)."""
        kw: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, val = part.partition("=")
            if not sep or key.strip() not in cls.__dataclass_fields__:
                raise E2simError(f"--psg-bits: expected NAME=BITS with NAME in "
                                 f"{', '.join(cls.__dataclass_fields__)}, got {part!r}")
            try:
                kw[key.strip()] = int(val)
            except ValueError:
                raise E2simError(f"--psg-bits {key.strip()}: bit-width must be an integer, got {val!r}") from None
        return cls(**kw)


def check_fraction(f: float, what: str) -> float:
    f = float(f)
    if not (0.0 <= f <= 1.0):
        raise E2simError(f"{what}: fallback fraction must be in [0, 1], got {f:g}")
    return f


def psg_layers(plan: Plan) -> np.ndarray:
    """[L] layers PSG covers: every convolution."""
    return np.array([k == "conv" for k in plan.counts.kinds], bool)


GATE_CONV_SUFFIX = ".gate.conv"  # the SLU gate's embedding conv (techniques/slu.py gate_layers)


def _is_gate_conv(name: str, plan: Plan) -> bool:
    """A gate conv of a block of this workload, in a plan built without SLU gates."""
    return (name.endswith(GATE_CONV_SUFFIX) and "gate" not in plan.counts.roles
            and name[:-len(GATE_CONV_SUFFIX)] in set(plan.counts.blocks))


@record
class PSG(Record):
    bits: PSGBits = PSGBits()
    fallback: float | None = None
    per_layer: Mapping[str, float] = field(default_factory=dict)
    source: str = "--psg-fallback"
    name: str = "psg"

    def __post_init__(self):
        if (self.fallback is None) == (not self.per_layer):
            raise ValueError("PSG needs exactly one of fallback or per_layer")
        if self.fallback is not None:
            check_fraction(self.fallback, self.source)
        for n, f in self.per_layer.items():
            check_fraction(f, f"{self.source}: layer {n}")

    def fractions(self, plan: Plan) -> np.ndarray:
        """[L] fallback fraction per layer (0 where PSG does not apply)."""
        convs = psg_layers(plan)
        names = plan.counts.names
        if self.fallback is not None:
            return np.where(convs, self.fallback, 0.0)
        conv_names = {n for n, c in zip(names, convs) if c}
        # Stats from a gated training run carry the SLU gates' convs too; without SLU in this estimate those
        # gates do not exist, so their fractions do not apply (the workload's own convs must all be there).
        unknown = sorted(n for n in set(self.per_layer) - conv_names if not _is_gate_conv(n, plan))
        if unknown:
            raise E2simError(f"{self.source}: {unknown[0]!r} is not a convolution of the workload")
        missing = [n for n in names if n in conv_names and n not in self.per_layer]
        if missing:
            hint = (" (the stats come from a run without SLU gates; measure them with train --slu --psg)"
                    if missing[0].endswith(GATE_CONV_SUFFIX) else "")
            raise E2simError(f"{self.source}: no fallback fraction for conv layer {missing[0]!r}{hint}")
        return np.array([self.per_layer.get(n, 0.0) for n in names])

    def workload(self, w: Workload) -> Workload:
        return w

    def apply(self, plan: Plan, workload: Workload) -> Plan:
        b, grad_float = self.bits.resolve(plan.precision)
        # Stored results (conv outputs, weight gradients) keep the precision's widths: 32 bits at fp32 as
        # in the official code, 8 at int8 (PSG narrows the arithmetic, it never widens storage).
        out_bits, wgrad_bits, _ = preset(plan.precision)
        frac = self.fractions(plan)
        conv = psg_layers(plan)[plan.layer]
        p = plan.pass_
        fwd, bi, bw, up = conv & (p == FWD), conv & (p == BWD_IN), conv & (p == BWD_W), conv & (p == UPD)
        plan = set_items(plan, fwd, a_bits=b.act, b_bits=b.weight, is_float=False)
        plan = replace(plan, tensor_bits=tensor_bits(plan, fwd, input=b.act, weight=b.weight, output=out_bits))
        plan = set_items(plan, bi, a_bits=b.grad, b_bits=b.weight, is_float=grad_float)
        plan = replace(plan, tensor_bits=tensor_bits(plan, bi, grad_output=b.grad, weight=b.weight,
                                                     grad_input=b.grad))
        # Fallback: the full-precision weight gradient on a fraction F of the entries.
        fallback = set_items(plan, bw, a_bits=b.act, b_bits=b.grad, is_float=grad_float, tag="psg_fallback",
                             scale=plan.scale[bw] * frac[plan.layer[bw]])
        fallback = replace(fallback, tensor_bits=tensor_bits(fallback, bw, input=b.act, grad_output=b.grad,
                                                             grad_weight=wgrad_bits)).select(bw)
        # Predictor: the MSB weight gradient over every entry (replaces the original item).
        plan = set_items(plan, bw, a_bits=b.msb_act, b_bits=b.msb_grad, is_float=False, tag="psg_predict")
        plan = replace(plan, tensor_bits=tensor_bits(plan, bw, input=b.msb_act, grad_output=b.msb_grad,
                                                     grad_weight=wgrad_bits))
        plan = set_items(plan, up, tag="sign_update")
        counts = with_update_rule(plan.counts, psg_layers(plan), PSG_UPDATE_OPS_PER_PARAM, keeps_state=False)
        plan = rebase(plan, counts)
        fallback = rebase(fallback, counts)
        what = f"fallback {self.fallback:g}" if self.fallback is not None else f"per-layer fallback ({self.source})"
        return plan.concat(fallback).with_notes(
            f"psg on {plan.precision}: convs fwd {b.act}x{b.weight} bits, grad {b.grad}"
            f"{' float' if grad_float else ''}, predictor {b.msb_act}x{b.msb_grad}, {what}")
