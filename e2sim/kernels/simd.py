"""int16 (or int8) x int16 multiply-add register tiles written directly as LLVM vector IR (numba intrinsics).

Why: numba's loop vectoriser turns the multi-accumulator int32 dot-product loops of conv.py into ``vpmulld``
(8 products per instruction on AVX2) plus separate adds. The same sums written as "sign-extend 16 lanes to
int32, multiply, add the even lanes to the odd lanes" are matched by LLVM's x86 back end to ``vpmaddwd``
(16 products and 8 additions per instruction), twice the products per instruction (end-to-end figures in
benchmarks/BENCHMARKS.md, "PSG kernels"). The IR is target-independent: other CPUs get plain vector code with
the same results.

Exactness: each of the 8 int32 lanes of an accumulator sums 2 of every 16 products (a pair per step), so
over ``steps`` steps a lane holds a partial sum of ``2 * steps = m / 8`` products; the lanes are then added
in int64. A tile over m terms is therefore exact when a sum of m / 8 products provably fits in int32
(conv.cm_block sizes the blocks so).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16  # elements per step (16 int16: one 256-bit load)
_I32 = ir.IntType(32)
_WIDE = ir.VectorType(_I32, LANES)
_HALF = ir.VectorType(_I32, LANES // 2)
_HALF64 = ir.VectorType(ir.IntType(64), LANES // 2)
_EVEN = ir.Constant(ir.VectorType(_I32, LANES // 2), list(range(0, LANES, 2)))
_ODD = ir.Constant(ir.VectorType(_I32, LANES // 2), list(range(1, LANES, 2)))


def _flat(t, dtypes) -> bool:
    return isinstance(t, types.Array) and t.ndim == 1 and t.dtype in dtypes and t.layout == "C"


def simd_operands(x, g) -> bool:
    """Whether the tiles take these (numba) array types: flat int8 or int16 x (int8 digits halve the layout's
    memory traffic; the loads sign-extend them) and flat int16 g."""
    return _flat(x, (types.int8, types.int16)) and _flat(g, (types.int16,))


def _tile_signature(n_g: int, args, n_x: int):
    """The intrinsic's signature, or None (numba then reports a typing error) for anything but flat int16
    arrays and integer indices."""
    x, xi, g, *rest = args
    if len(rest) != n_g + 1 or not simd_operands(x, g) or \
            not all(isinstance(t, types.Integer) for t in (xi, *rest)):
        return None
    return types.UniTuple(types.int64, n_x * n_g)(*args)


def _tile_codegen(n_x: int, n_g: int):
    """IR of ``f(x, xi, g, gi_0..gi_{n_g-1}, steps)``: the ``n_g * n_x`` int64 sums
    ``sum_{j < 16*steps} x[xi + i + j] * g[gi_k + j]`` for taps i < n_x (neighbouring: offsets 0, 1, ...) and
    gradient rows k < n_g, order k major, i minor. x (int8 or int16) and g (int16) are flat (1-D C-contiguous); the
    caller guarantees the reads stay inside them. Taking the arrays whole with indices (not slices) keeps
    reference counting and slice set-up out of the callers' hot loops. Each step loads every tap and every
    gradient row once, so each x vector serves n_g products and each g vector n_x."""

    def codegen(context, builder, signature, llargs):
        xt, _, gt = signature.args[:3]
        xdata = context.make_array(xt)(context, builder, llargs[0]).data
        gdata = context.make_array(gt)(context, builder, llargs[2]).data

        def index(k):
            return context.cast(builder, llargs[k], signature.args[k], types.intp)

        xi = index(1)
        ptrs = [builder.gep(xdata, [builder.add(xi, ir.Constant(xi.type, i))]) for i in range(n_x)]
        ptrs += [builder.gep(gdata, [index(3 + k)]) for k in range(n_g)]
        steps = index(3 + n_g)
        loads = [ir.PointerType(ir.VectorType(context.get_data_type(t.dtype), LANES))
                 for t in [xt] * n_x + [gt] * n_g]
        accs = [cgutils.alloca_once_value(builder, ir.Constant(_HALF, None)) for _ in range(n_x * n_g)]
        with cgutils.for_range(builder, steps) as loop:
            at = builder.mul(loop.index, ir.Constant(loop.index.type, LANES))
            vecs = [builder.sext(builder.load(builder.bitcast(builder.gep(p, [at]), load), align=1), _WIDE)
                    for p, load in zip(ptrs, loads)]
            xs, gs = vecs[:n_x], vecs[n_x:]
            for k, g in enumerate(gs):
                for i, x in enumerate(xs):
                    prod = builder.mul(x, g)
                    pairs = builder.add(builder.shuffle_vector(prod, prod, _EVEN),
                                        builder.shuffle_vector(prod, prod, _ODD))
                    acc = accs[k * n_x + i]
                    builder.store(builder.add(builder.load(acc), pairs), acc)
        sums = []
        for acc in accs:  # the lanes' int32 sums added in int64
            v = builder.sext(builder.load(acc), _HALF64)
            s = builder.extract_element(v, ir.Constant(_I32, 0))
            for lane in range(1, LANES // 2):
                s = builder.add(s, builder.extract_element(v, ir.Constant(_I32, lane)))
            sums.append(s)
        return context.make_tuple(builder, signature.return_type, sums)

    return codegen


@intrinsic
def madd16_3x3(typingctx, x, xi, g, g0, g1, g2, steps):
    """Three neighbouring taps x three gradient rows (see _tile_codegen)."""
    sig = _tile_signature(3, (x, xi, g, g0, g1, g2, steps), 3)
    return (sig, _tile_codegen(3, 3)) if sig is not None else None


@intrinsic
def madd16_1x3(typingctx, x, xi, g, g0, g1, g2, steps):
    """One tap x three gradient rows (see _tile_codegen)."""
    sig = _tile_signature(3, (x, xi, g, g0, g1, g2, steps), 1)
    return (sig, _tile_codegen(1, 3)) if sig is not None else None
