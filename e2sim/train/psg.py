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


def _quantized_input(x: np.ndarray, signed: bool) -> np.ndarray:
    from ..kernels.psg import quantize_activation

    codes, delta = quantize_activation(x, BITS, signed)
    return codes.astype(np.float32) * np.float32(delta[0])


class _PsgConvFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, conv: PsgConv2d):
        xd = torch.from_numpy(_quantized_input(x.detach().contiguous().numpy(), conv.input_signed))
        wd = torch.from_numpy(_quantized_weight(weight.detach().contiguous().numpy()))
        ctx.save_for_backward(x, wd)
        ctx.conv = conv
        # Straight-through quantizers: the backward treats the quantization as identity.
        return F.conv2d(xd, wd, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    @staticmethod
    def backward(ctx, gy):
        from ..kernels.psg import psg_weight_grad

        x, wd = ctx.saved_tensors
        conv = ctx.conv
        gy = gy.contiguous()
        gx = None
        if ctx.needs_input_grad[0]:
            # Error backpropagation in fp32 through the 8-bit weights (official: num_bits_grad 32).
            gx = torch.nn.grad.conv2d_input(x.shape, wd, gy, conv.stride, conv.padding, conv.dilation, conv.groups)
        r = psg_weight_grad(x.detach().numpy(), gy.numpy(), tuple(wd.shape), stride=conv.stride,
                            padding=conv.padding, groups=conv.groups, bits=BITS, msb_bits=MSB_BITS,
                            grad_msb_bits=GRAD_MSB_BITS, threshold=conv.threshold, x_signed=conv.input_signed)
        conv.fallback_fraction = float(r.fallback.mean())
        return gx, torch.from_numpy(r.sign.astype(np.float32)), None


class PsgConv2d(nn.Conv2d):
    """A bias-free Conv2d whose weight gradient is the PSG sign."""

    input_signed: bool = True
    threshold: float = 5e-5
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


def convert_to_psg(model: nn.Module, threshold: float) -> list[str]:
    """Turn every Conv2d of ``model`` into a PsgConv2d in place (same parameters, same names); returns the
    converted layers' names in module order."""
    unsigned = _unsigned_inputs(model)
    converted = []
    for name, m in list(model.named_modules()):
        if type(m) is nn.Conv2d:
            m.__class__ = PsgConv2d
            m.input_signed = name not in unsigned
            m.threshold = threshold
            converted.append(name)
    return converted


def collect_fallback(model: nn.Module, names: list[str]) -> list[float]:
    """Fallback fraction of each named PSG conv at its last backward pass."""
    modules = dict(model.named_modules())
    return [modules[n].fallback_fraction for n in names]
