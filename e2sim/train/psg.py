"""PSG convolution for torch: 8-bit forward, fp32 error backpropagation, weight-gradient *sign* from the
numba PSG kernel (``e2sim.kernels.psg``: MSB-precision prediction, full-precision fallback where the
prediction is below the threshold). As in the official code (``models/conv_efficient.py``,
../shared/reference/e2train-paper.md §3) PSG covers every conv, including the stem, the downsample shortcuts
and the SLU gates' embedding convs; linear, BatchNorm and LSTM parameters keep ordinary fp32 gradients.

Deviation: activations are quantized with the current batch's range in eval mode as well (the official
code uses a running range at evaluation).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BITS = 8  # official: --num_bits 8, --num_bits_weight 8
MSB_BITS = 4  # official: --msb_bits 4 (the weight's MSB part does not enter the weight gradient)
GRAD_MSB_BITS = 16  # official: --msb_bits_grad 16


def _quantized_weight(w: np.ndarray) -> np.ndarray:
    from ..kernels.quantize import max_abs_range, quantize

    codes, delta = quantize(w, max_abs_range(w, "channel"), BITS, True)
    return codes.astype(np.float32) * np.asarray(delta, np.float32).reshape(-1, 1, 1, 1)


def _wgrad(x: np.ndarray, w_shape, gy: torch.Tensor, conv) -> torch.Tensor:
    return torch.nn.grad.conv2d_weight(torch.from_numpy(np.ascontiguousarray(x, np.float32)), w_shape, gy,
                                       conv.stride, conv.padding, conv.dilation, conv.groups)


def psg_direction_fast(x_codes: np.ndarray, dx: float, gy: torch.Tensor, full: torch.Tensor, conv):
    """The PSG rule of ``e2sim.kernels.psg.psg_weight_grad`` with the same quantizers, but the MSB prediction
    summed by torch in float32 instead of exactly in integers: its relative rounding error is ~1e-7, so only
    entries within that of zero or of the threshold can differ. ``full`` is the weight gradient of the
    8-bit input and fp32 output gradient (the fallback). (The exact kernel is 10-20x slower than torch's
    conv weight gradient on CPU; ``--psg-exact`` uses it.)

    Returns (sign as float32 tensor, fallback fraction)."""
    from ..kernels.psg import quantize_output_grad
    from ..kernels.quantize import msb_split

    gq, dg = quantize_output_grad(gy.numpy(), GRAD_MSB_BITS)
    xm = msb_split(x_codes, BITS, MSB_BITS, conv.input_signed)
    predicted = _wgrad(xm, full.shape, torch.from_numpy(gq.astype(np.float32)), conv) * float(dx * dg[0])
    mag = predicted.abs()
    tau = conv.threshold if conv.threshold >= 0 else -conv.threshold * float(mag.max())
    fallback = mag <= tau
    return torch.where(fallback, torch.sign(full), torch.sign(predicted)), float(fallback.double().mean())


def psg_direction_exact(x: np.ndarray, gy: torch.Tensor, w_shape, conv):
    """The numba kernel's exact PSG direction (integer MSB prediction, float64 fallback entries)."""
    from ..kernels.psg import psg_weight_grad

    r = psg_weight_grad(x, gy.numpy(), tuple(w_shape), stride=conv.stride, padding=conv.padding,
                        groups=conv.groups, bits=BITS, msb_bits=MSB_BITS, grad_msb_bits=GRAD_MSB_BITS,
                        threshold=conv.threshold, x_signed=conv.input_signed)
    return torch.from_numpy(r.sign.astype(np.float32)), float(r.fallback.mean())


class _PsgConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, conv: PsgConv2d):
        from ..kernels.psg import quantize_activation

        codes, delta = quantize_activation(x.detach().contiguous().numpy(), BITS, conv.input_signed)
        xd = torch.from_numpy(codes.astype(np.float32) * np.float32(delta[0]))
        wd = torch.from_numpy(_quantized_weight(weight.detach().contiguous().numpy()))
        ctx.save_for_backward(x, xd, wd)
        ctx.codes, ctx.delta, ctx.conv = codes, float(delta[0]), conv
        # Straight-through quantizers: the backward treats the quantization as identity.
        return F.conv2d(xd, wd, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    @staticmethod
    def backward(ctx, gy):
        x, xd, wd = ctx.saved_tensors
        conv = ctx.conv
        gy = gy.contiguous()
        if conv.exact:
            gx = None
            if ctx.needs_input_grad[0]:
                gx = torch.nn.grad.conv2d_input(x.shape, wd, gy, conv.stride, conv.padding, conv.dilation,
                                                conv.groups)
            sign, conv.fallback_fraction = psg_direction_exact(x.detach().numpy(), gy, wd.shape, conv)
            return gx, sign, None
        # One backward call for the error (fp32, through the 8-bit weights; official num_bits_grad 32) and
        # the fallback weight gradient of the 8-bit input, as a plain conv's backward computes both.
        gx, full, _ = torch.ops.aten.convolution_backward(
            gy, xd, wd, None, conv.stride, conv.padding, conv.dilation, False, [0, 0], conv.groups,
            [ctx.needs_input_grad[0], True, False])
        sign, conv.fallback_fraction = psg_direction_fast(ctx.codes, ctx.delta, gy, full, conv)
        return gx, sign, None


class PsgConv2d(nn.Conv2d):
    """A bias-free Conv2d whose weight gradient is the PSG sign."""

    input_signed: bool = True
    threshold: float = 5e-5
    exact: bool = False
    fallback_fraction: float = float("nan")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros" or self.dilation != (1, 1) or self.bias is not None:
            raise ValueError("PSG convs are bias-free, zero-padded and undilated")
        return _PsgConvFunction.apply(x, self.weight, self)


def _unsigned_inputs(model: nn.Module) -> set[str]:
    """Convs whose input comes straight out of a ReLU (official: ``input_signed=False`` for those)."""
    from .models import BasicBlock, InvertedResidual

    names = set()
    for name, m in model.named_modules():
        if isinstance(m, BasicBlock):
            names.add(f"{name}.conv2")
        elif isinstance(m, InvertedResidual):
            names.add(f"{name}.conv3")
            if m.conv1 is not None:
                names.add(f"{name}.conv2")
    return names


def convert_to_psg(model: nn.Module, threshold: float, exact: bool = False) -> list[str]:
    """Turn every Conv2d of ``model`` into a PsgConv2d in place (same parameters, same names); returns the
    converted layers' names in module order."""
    unsigned = _unsigned_inputs(model)
    converted = []
    for name, m in list(model.named_modules()):
        if type(m) is nn.Conv2d:
            # Swapping the class keeps the module's name, parameters and state-dict keys unchanged.
            m.__class__ = PsgConv2d
            m.exact = exact
            m.input_signed = name not in unsigned
            m.threshold = threshold
            converted.append(name)
    return converted


def collect_fallback(model: nn.Module, names: list[str]) -> list[float]:
    """Fallback fraction of each named PSG conv at its last backward pass."""
    modules = dict(model.named_modules())
    return [modules[n].fallback_fraction for n in names]
