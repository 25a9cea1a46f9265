"""PSG kernels: the exact integer PSG weight gradient (predict + threshold + fallback + sign) against
(a) the official code's way in torch: quantize the output gradient to 16 bits, then two fp32
    ``torch.nn.grad.conv2d_weight`` calls (MSB branch and full branch), mix and take the sign;
(b) a plain NumPy integer implementation (im2col by sliding windows + int64 matmul);
(c) torch's fp32 weight gradient alone (one ``conv2d_weight``), the target beyond.

CIFAR ResNet 3x3 layer shapes (16/32/64 channels at 32/16/8 pixels), batch 128, 2 threads. Inputs are the
forward pass's products on both sides (8-bit input codes and their 4-bit MSB part; torch gets the same values
dequantized); timed is what the backward pass does from the fp32 output gradient on. The same run checks that
all three PSG implementations give the same signs. Also reports the first-call (compile) vs cached time.
The implementations are timed round-robin (timing.interleaved_medians; the NumPy peer every third round), so
their ratios are measured under the same machine speed.

    python benchmarks/bench_psg_kernels.py [--repeats 7] [--threshold -0.02] [--no-numpy] [--stages]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402
from timing import interleaved_medians  # noqa: E402

SHAPES = [(16, 32), (32, 16), (64, 8)]
BATCH = 128


def torch_official(q_input, msb_input, gy, w_shape, threshold):
    """models/conv_efficient.py + predictive.py backward: quantize_grad(16 bits, per-tensor max, signed,
    deterministic), conv2d_weight for each branch, mix where |g_msb| > tau (ours: at-or-below falls back), sign."""
    import torch

    m = gy.abs().max()
    delta = (m + m) / 2.0**16
    g16 = gy.add(m).div(delta).clamp(0.0, 2.0**16 - 1).round().mul(delta).sub(m)
    g_msb = torch.nn.grad.conv2d_weight(msb_input, w_shape, g16, padding=1)
    g_q = torch.nn.grad.conv2d_weight(q_input, w_shape, gy, padding=1)
    a = g_msb.abs()
    tau = threshold if threshold >= 0 else -threshold * a.max()
    return torch.where(a > tau, g_msb, g_q).sign()


def numpy_psg(xq, xm, dx, gy, w_shape, threshold):
    """Plain NumPy integer PSG: im2col (sliding windows) and int64 matmul for the prediction; the fallback
    entries from the full codes and the fp32 gradient in float64; then the sign."""
    from e2sim.kernels.psg import quantize_output_grad

    co, ci, kh, kw = w_shape
    gq, dg = quantize_output_grad(gy, 16)

    def cols(a):
        ap = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
        win = np.lib.stride_tricks.sliding_window_view(ap, (kh, kw), axis=(2, 3))  # n, c, oh, ow, kh, kw
        return win.transpose(1, 4, 5, 0, 2, 3).reshape(ci * kh * kw, -1)

    g2 = gq.transpose(1, 0, 2, 3).reshape(co, -1).astype(np.int64)
    pred = (g2 @ cols(xm).astype(np.int64).T).reshape(w_shape) * (float(dx) * float(dg[0]))
    mag = np.abs(pred)
    tau = threshold if threshold >= 0 else -threshold * mag.max()
    fb = mag <= tau
    sign = np.sign(pred)
    o_idx, r_idx = np.nonzero(fb.reshape(co, -1))
    if o_idx.size:
        xc = cols(xq)
        gf = gy.transpose(1, 0, 2, 3).reshape(co, -1).astype(np.float64)
        full = np.einsum("ek,ek->e", gf[o_idx], xc[r_idx].astype(np.float64))
        sign.reshape(co, -1)[o_idx, r_idx] = np.sign(full)
    return sign.astype(np.int8)


def first_call_times():
    """Import + first PSG call in two fresh interpreters sharing a new, empty numba cache folder: the first
    compiles every kernel and writes the cache (cache=True), the second only loads it."""
    import tempfile

    code = ("import time, numpy as np; t=time.perf_counter(); from e2sim.kernels.psg import psg_weight_grad;"
            "x=np.random.rand(2,3,6,6).astype(np.float32); g=np.random.rand(2,4,6,6).astype(np.float32);"
            "psg_weight_grad(x,g,(4,3,3,3),padding=1); print(time.perf_counter()-t)")
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            out.append(float(r.stdout.strip()))
    return out


def stage_fns(xq, x_scale, gy, geom, threshold):
    """e2sim's PSG split into its stages (private kernels, same arguments as psg_from_codes uses), each
    re-run on the outputs of one full call: where the time goes."""
    from e2sim.kernels import conv, psg
    from e2sim.kernels.quantize import max_abs_range, quantizer_constants

    psg.psg_from_codes(xq, x_scale, gy, geom, bits=8, msb_bits=4, x_signed=False, grad_msb_bits=16,
                       threshold=threshold)
    lay = conv.cm_layout(geom)
    d_lut, e_lut = psg._digit_tables(8, 4, False)
    q_e = int(np.argmax(e_lut))
    d = conv.workspace("psg_digits", geom, (geom.ci, lay.length + lay.tail), d_lut.dtype)
    qcm = conv.workspace("input_cm", geom, (geom.ci, lay.length + lay.tail), xq.dtype)
    fcm = conv.workspace("grad_cm", geom, (geom.co, lay.length), np.float32)
    g = conv.workspace("psg_grad_codes", geom, (geom.co, lay.length), np.int16)
    e_j, e_n = np.empty((geom.ci, 256), np.int64), np.empty(geom.ci, np.int64)
    lo, delta, qmax, zero = quantizer_constants(max_abs_range(gy, "tensor")[0], 16, True)
    main = np.empty((geom.co, geom.ci, geom.kh, geom.kw), np.int64)
    block = conv.cm_block(conv.int32_terms(16, 2**15), True)
    predicted, _, _ = psg._predict_stride1(xq, x_scale, gy, geom, 8, 4, False, 16)
    _, _, entries = psg._select_fallback(predicted, threshold)
    return {
        "input layout (digits, codes)": lambda: psg._digits_to_cm(xq, 0, 4, 0, q_e, geom.ph, geom.pw, lay.wp,
                                                                  lay.row, d, qcm, e_j, e_n),
        "gradient range": lambda: max_abs_range(gy, "tensor"),
        "gradient layout (codes, fp32)": lambda: psg._quantize_grad_to_cm(gy, lo, delta, qmax, zero, lay.wp,
                                                                          lay.row, g, fcm),
        "prediction kernel": lambda: conv._wgrad_cm_kernel(d, g, lay.row, geom.kh, geom.kw, geom.ci, geom.co,
                                                           block, main),
        "fallback entries": lambda: psg._entries_from_cm(qcm, fcm, geom, entries),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threshold", type=float, default=-0.02,
                    help="fallback threshold (relative when negative) used on the random layer data")
    ap.add_argument("--no-numpy", action="store_true", help="skip the slow NumPy peer")
    ap.add_argument("--stages", action="store_true",
                    help="also time e2sim's stages, interleaved with one torch fp32 weight gradient")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from e2sim.kernels.conv import _geometry
    from e2sim.kernels.psg import psg_from_codes, quantize_activation
    from e2sim.kernels.quantize import msb_split

    import numba

    print(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}; batch {BATCH}; "
          f"threshold {args.threshold}; medians of {args.repeats} interleaved rounds (NumPy: every 3rd round)")
    cold = first_call_times()
    print(f"import + first PSG call in a fresh process: {cold[0]:.2f} s with an empty numba cache (compiles), "
          f"{cold[1]:.2f} s in the next process (loads the cache)")
    hdr = ("shape", "e2sim_ms", "torch_official_ms", "numpy_int_ms", "torch_fp32_wgrad_ms", "vs_official",
           "vs_numpy", "vs_fp32_wgrad", "fallback", "signs_equal")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    rng = np.random.default_rng(0)
    stages = {}
    for c, hw in SHAPES:
        x = np.maximum(rng.standard_normal((BATCH, c, hw, hw)), 0).astype(np.float32)
        gy = (rng.standard_normal((BATCH, c, hw, hw)) * 1e-4).astype(np.float32)
        w_shape = (c, c, 3, 3)
        xq, dx = quantize_activation(x, 8)
        xm = msb_split(xq, 8, 4, False)
        geom = _geometry(x.shape, w_shape, 1, 1, 1)

        def ours():
            return psg_from_codes(xq, float(dx[0]), gy, geom, bits=8, msb_bits=4, x_signed=False, grad_msb_bits=16,
                                  threshold=args.threshold)

        q_t = torch.from_numpy(xq.astype(np.float32) * dx[0])
        m_t = torch.from_numpy(xm.astype(np.float32) * dx[0])
        g_t = torch.from_numpy(gy)
        r = ours()
        s_torch = torch_official(q_t, m_t, g_t, w_shape, args.threshold).numpy().astype(np.int8)
        equal = np.mean(r.sign == s_torch)
        fns = {"ours": ours,
               "official": lambda: torch_official(q_t, m_t, g_t, w_shape, args.threshold),
               "fp32": lambda: torch.nn.grad.conv2d_weight(torch.from_numpy(x), w_shape, g_t, padding=1)}
        if args.no_numpy:
            np_equal = "-"
        else:
            np_sign = numpy_psg(xq, xm, dx[0], gy, w_shape, args.threshold)
            np_equal = f"{np.mean(np_sign == r.sign):.6f}"
            fns["numpy"] = lambda: numpy_psg(xq, xm, dx[0], gy, w_shape, args.threshold)
        t = interleaved_medians(fns, args.repeats, every={"numpy": 3})
        t_ours, t_off, t_fp32, t_np = t["ours"], t["official"], t["fp32"], t.get("numpy", float("nan"))
        np_ms, vs_np = ("-", "-") if np.isnan(t_np) else (f"{t_np * 1e3:.0f}", f"{t_np / t_ours:.0f}x")
        print(f"| {c}ch {hw}x{hw} | {t_ours * 1e3:.1f} | {t_off * 1e3:.1f} | {np_ms} | {t_fp32 * 1e3:.1f} | "
              f"{t_off / t_ours:.2f}x | {vs_np} | {t_fp32 / t_ours:.2f}x | {r.fallback.mean():.4f} | "
              f"torch {equal:.6f}, numpy {np_equal} |", flush=True)
        if args.stages:
            fns = {"torch fp32 wgrad": fns["fp32"], "e2sim whole": ours,
                   **stage_fns(xq, float(dx[0]), gy, geom, args.threshold)}
            st = interleaved_medians(fns, args.repeats)
            stages[f"{c}ch {hw}x{hw}"] = st
    if args.stages:
        names = list(next(iter(stages.values())))
        print("\nstage medians, ms (interleaved rounds; the whole call also pays cache misses the isolated "
              "stages do not)")
        print("| stage | " + " | ".join(stages) + " |")
        print("|" + "---|" * (len(stages) + 1))
        for name in names:
            print(f"| {name} | " + " | ".join(f"{st[name] * 1e3:.2f}" for st in stages.values()) + " |")


if __name__ == "__main__":
    main()
