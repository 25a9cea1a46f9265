"""PSG convolution for torch: 8-bit forward, fp32 error backpropagation, weight-gradient *sign* from the
numba PSG kernel (``e2sim.kernels.psg``: MSB-precision prediction, full-precision fallback where the
prediction is below the threshold). As in the official code (``models/conv_efficient.py``,
../shared/reference/e2train-paper.md §3) PSG covers every conv, including the stem, the downsample shortcuts
and the SLU gates' embedding convs; linear, BatchNorm and LSTM parameters keep ordinary fp32 gradients.

Deviation: activations are quantized with the current batch's range in eval mode as well (the official
code uses a running range at evaluation).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BITS = 8  # official: --num_bits 8, --num_bits_weight 8
MSB_BITS = 4  # official: --msb_bits 4 (the weight's MSB part does not enter the weight gradient)
GRAD_MSB_BITS = 16  # official: --msb_bits_grad 16


# The fast path's full-precision fallback. For a small fallback set, only the fallback entries are computed,
# as the exact kernel computes them (exact products, float64 sums): through its channel-major layouts
# (``wgrad_entries``), or, for a very small set, straight from the NCHW arrays (``wgrad_entries_direct``: no
# layout copies, slower per entry). For a large set, torch's dense float32 weight gradient, in the same
# backward call as the error. The switch points, by stride, are where the costs cross on ResNet-20's layer
# shapes at batch 128 (measured: benchmarks/BENCHMARKS.md, "Training step"; at stride 1 the layout sums of
# half the entries still cost 0.7x torch's dense weight gradient).
DENSE_ABOVE = {1: 0.5, 2: 0.15}
DIRECT_BELOW = 0.02


def _quantized_weight(w: np.ndarray) -> np.ndarray:
    from ..kernels.quantize import max_abs_range, quantize_values

    return quantize_values(w, max_abs_range(w, "channel"), BITS, True)[2]


@contextmanager
def _one_numba_thread():
    """The fast path's numba passes are short and memory-bound, and they run right after torch ops whose
    OpenMP threads (another OpenMP runtime than numba's) still spin-wait for work: a second numba thread
    then waits for a core. Measured on the 2-core machine under load: 1.4-6.6 ms per pass on one thread,
    8-9 ms on two (benchmarks/BENCHMARKS.md, "Training step")."""
    import numba

    torch_threads = torch.get_num_threads()
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)
        if torch.get_num_threads() != torch_threads:
            # launching numba's OpenMP pool (its first use in a process) sets this thread's OpenMP thread
            # count, which torch reads as its own (see e2sim.train.loop.set_threads)
            torch.set_num_threads(torch_threads)


def dense_above(conv) -> float:
    """The fallback fraction above which ``conv``'s fallback gradient is computed densely."""
    return DENSE_ABOVE.get(max(conv.stride), min(DENSE_ABOVE.values()))


def psg_prediction(x_codes: np.ndarray, dx: float, gy: np.ndarray, w_shape, conv):
    """The MSB prediction of ``e2sim.kernels.psg.psg_weight_grad`` with the same quantizers, summed by torch
    in float32 instead of exactly in integers: its relative rounding error is ~1e-7, so only entries within
    that of zero or of the threshold can differ. (The exact kernel is 10-20x slower than torch's conv weight
    gradient on CPU; ``--psg-exact`` uses it.)

    Returns (predicted gradient, fallback mask ``|predicted| <= tau``) as NumPy arrays (weight-sized: NumPy
    does them on the calling thread, where torch would wake its thread pool for each)."""
    from ..kernels.psg import quantize_output_grad
    from ..kernels.quantize import msb_split

    gq, dg = quantize_output_grad(gy, GRAD_MSB_BITS, np.float32)
    xm = msb_split(x_codes, BITS, MSB_BITS, conv.input_signed, np.float32)
    predicted = torch.nn.grad.conv2d_weight(torch.from_numpy(xm), w_shape, torch.from_numpy(gq), conv.stride,
                                            conv.padding, conv.dilation, conv.groups).numpy()
    predicted *= np.float32(dx * dg[0])  # the float32 scale, as torch's tensor * scalar applied it
    mag = np.abs(predicted)
    tau = conv.threshold if conv.threshold >= 0 else -conv.threshold * float(mag.max())
    return predicted, mag <= np.float32(tau)


def psg_sign_dense(predicted: np.ndarray, fallback: np.ndarray, full: np.ndarray) -> np.ndarray:
    """The PSG direction with the fallback entries' sign from ``full``, the dense weight gradient of the
    8-bit input and the fp32 output gradient."""
    return np.where(fallback, np.sign(full), np.sign(predicted))


def psg_sign_sparse(predicted: np.ndarray, fallback: np.ndarray, x_codes: np.ndarray, dx: float,
                    gy: np.ndarray, conv) -> np.ndarray:
    """The PSG direction with the fallback entries' full-precision gradient computed for those entries only,
    as the exact kernel computes them."""
    from ..kernels.conv import _geometry
    from ..kernels.psg import wgrad_entries, wgrad_entries_direct

    sign = np.sign(predicted)
    entries = np.argwhere(fallback)  # C order, as the boolean-mask assignment below
    if entries.shape[0]:
        geom = _geometry(x_codes.shape, predicted.shape, conv.stride, conv.padding, conv.groups)
        entry_sums = wgrad_entries_direct if entries.shape[0] <= DIRECT_BELOW * fallback.size else wgrad_entries
        sign[fallback] = np.sign(entry_sums(x_codes, gy, geom, entries) * np.float64(dx))
    return sign


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
        from ..kernels.psg import quantize_activation_values

        with _one_numba_thread():
            # codes (for the MSB prediction and the fallback entries) and values in one pass
            codes, delta, xd = quantize_activation_values(x.detach().contiguous().numpy(), BITS,
                                                          conv.input_signed)
            xd = torch.from_numpy(xd)
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
        need_gx = ctx.needs_input_grad[0]
        if conv.exact:
            gx = None
            if need_gx:
                gx = torch.nn.grad.conv2d_input(x.shape, wd, gy, conv.stride, conv.padding, conv.dilation,
                                                conv.groups)
            sign, conv.fallback_fraction = psg_direction_exact(x.detach().numpy(), gy, wd.shape, conv)
            return gx, sign, None
        with _one_numba_thread():
            predicted, fallback = psg_prediction(ctx.codes, ctx.delta, gy.numpy(), wd.shape, conv)
        conv.fallback_fraction = float(fallback.mean())
        dense = conv.fallback_fraction > dense_above(conv)
        gx = full = None
        if need_gx or dense:
            # the error (fp32, through the 8-bit weights; official num_bits_grad 32) and, when dense, the
            # fallback weight gradient of the 8-bit input, in one call as a plain conv's backward
            gx, full, _ = torch.ops.aten.convolution_backward(
                gy, xd, wd, None, conv.stride, conv.padding, conv.dilation, False, [0, 0], conv.groups,
                [need_gx, dense, False])
        if dense:
            sign = psg_sign_dense(predicted, fallback, full.numpy())
        else:
            with _one_numba_thread():
                sign = psg_sign_sparse(predicted, fallback, ctx.codes, ctx.delta, gy.numpy(), conv)
        return gx, torch.from_numpy(sign), None


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
