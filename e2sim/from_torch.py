"""Import a torch.nn.Module CNN as a Workload (torch.fx trace + shape propagation at batch 1).

Every traced operation is either counted as a layer, listed as cost-free (``COST_FREE_MODULES`` and
``COST_FREE_OPS``: reshapes, views, copies, dropout; no arithmetic), or rejected with a one-line error that
names the operation and the traced node. Nothing is skipped in silence.

- Gradients follow torch's autograd: a value needs a gradient when a trainable parameter lies upstream of
  it; a layer has a ``bwd_input`` GEMM only where its input needs one, and a ``bwd_weight`` GEMM only where
  its weights are trainable.
- Shapes are traced at batch 1, so a tensor's elements are one sample's. Where a layer meets more vectors
  or images than one (a linear layer on an N-D tensor, an lstm over a sequence, frames folded into the
  batch dimension) that count is its ``steps``.
- A module called several times is one layer per call (``name``, ``name#2``, ...); calls after the first
  share the first call's weights (``weights_from``): their weight gradients add up, and only the first
  call has an update.
- Residual blocks are found from the trace: a module whose own forward performs a tensor addition is a
  block; every layer inside it belongs to it (layers under a child named ``downsample``/``shortcut`` are its
  shortcut path, which selective layer update never skips). The first block always runs; the others are
  gated.
"""
from __future__ import annotations

import copy
import math
import operator
from collections import Counter

from .errors import E2simError
from .records import validated
from .workload import DATASETS, Block, Dataset, Layer, Schedule, Workload

# Cost-free operations: no arithmetic (views, reshapes, copies, concatenation, dropout, which e2sim counts
# as the identity of inference-style training without the mask). Anything not here and not counted below
# is an error.
COST_FREE_MODULES = frozenset({
    "Flatten", "Unflatten", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
})
COST_FREE_OPS = frozenset({
    # views and reshapes
    "flatten", "reshape", "view", "view_as", "squeeze", "unsqueeze", "permute", "transpose", "t",
    "contiguous", "expand", "expand_as", "narrow", "getitem", "unflatten",
    # concatenation and splitting (a copy, or producers writing into slices of one buffer)
    "cat", "concat", "concatenate", "stack", "chunk", "split", "unbind",
    # copies, casts, metadata
    "clone", "detach", "float", "to", "type_as", "size", "dim", "getattr",
    # dropout (functional), constant padding (a copy)
    "dropout", "pad",
})
_ACT_MODULES = {"ReLU", "ReLU6", "LeakyReLU", "Hardtanh", "SiLU", "GELU", "Hardswish", "ELU", "Mish"}
_ACT_OPS = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "silu", "gelu", "hardswish", "elu",
            "mish"}
_SIGMOID_OPS = {"sigmoid", "sigmoid_", "tanh", "tanh_", "hardsigmoid"}
_ADD_OPS = {"add", "add_", "iadd", "sub", "sub_", "isub"}
_MUL_OPS = {"mul", "mul_", "imul", "truediv", "div", "div_", "itruediv"}
_MATMUL_OPS = {"matmul", "bmm", "mm"}
_AVGPOOL_OPS = {"adaptive_avg_pool2d", "avg_pool2d", "mean"}
_MAXPOOL_OPS = {"adaptive_max_pool2d", "max_pool2d"}


SHAPE = "e2sim_shape"  # node.meta key of the traced output shape


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _op_name(node) -> str:
    fn = node.target
    if isinstance(fn, str):
        return fn
    return getattr(fn, "__name__", str(fn))


def fold3(dims) -> tuple[int, int, int]:
    """Per-sample dimensions of any rank as (C, H, W) for an element-wise layer (only the product counts):
    (d,) -> (d, 1, 1), (a, b) -> (a, b, 1), leading dimensions folded into C."""
    dims = [int(d) for d in dims]
    if not dims:
        return (1, 1, 1)
    if len(dims) == 1:
        return (dims[0], 1, 1)
    if len(dims) == 2:
        return (dims[0], dims[1], 1)
    return (math.prod(dims[:-2]), dims[-2], dims[-1])


def _elem_shape(shape) -> tuple[int, int, int]:
    """(C, H, W) of a tensor traced at batch 1: the batch dimension dropped when it leads (else kept: a
    sequence-first tensor)."""
    return fold3(shape[1:] if shape and shape[0] == 1 else shape)


def _conv_padding(node, padding, kernel, dilation):
    """Per-dimension padding of a conv whose padding may be 'same' / 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(t % 2 for t in total):
            raise E2simError(f"workload_from_torch: node {node.name}: padding='same' with an even kernel pads "
                             f"asymmetrically ({total}); e2sim models symmetric padding only")
        return (total[0] // 2, total[1] // 2)
    return _pair(padding)


def workload_from_torch(module, input_shape, *, name: str | None = None, dataset: str | Dataset | None = None,
                        batch_size: int = 128, schedule: Schedule | None = None) -> Workload:
    """Trace ``module`` on a zero input of ``input_shape`` ((C, H, W), or (N, C, H, W) whose N is ignored:
    the trace runs at batch 1) and build its Workload."""
    import torch
    from torch import fx

    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:
        shape = shape[1:]
    if len(shape) != 3 or min(shape) < 1:
        raise E2simError(f"workload_from_torch: input_shape must be (C, H, W) or (N, C, H, W), got {input_shape}")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many types for untraceable control flow
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise E2simError(f"workload_from_torch: cannot trace {type(module).__name__} with torch.fx: {msg}") from None
    _propagate_shapes(gm, module, shape, torch)
    return _Importer(gm, torch).build(module, shape, name=name, dataset=dataset, batch_size=batch_size,
                                      schedule=schedule)


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _shape_copy(mod, torch, memo: dict):
    """A copy of a module tree, in eval mode, whose convs, linears and batchnorms return uninitialised
    tensors of their output shape instead of computing it (the trace needs shapes, not values: a ResNet-50
    at 224x224 takes milliseconds instead of a second). The original module is untouched."""
    nn = torch.nn
    if id(mod) in memo:
        return memo[id(mod)]
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        new = nn.Identity()
    elif type(mod) in (nn.Conv2d, nn.ConvTranspose2d, nn.Linear):
        new = _ShapeOnly(mod)
    else:
        new = copy.copy(mod)
        new._modules = {k: None if c is None else _shape_copy(c, torch, memo) for k, c in mod._modules.items()}
        new.training = False
    memo[id(mod)] = new
    return new


class _ShapeOnly:
    """Stands in for a Conv2d, ConvTranspose2d or Linear module: returns ``x.new_empty(output shape)``."""

    def __new__(cls, orig):
        import torch

        class ShapeOnly(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.orig = orig

            def forward(self, x, *rest):
                m = self.orig
                linear = isinstance(m, torch.nn.Linear)
                if rest or (x.shape[-1] != m.in_features if linear else (x.dim() != 4 or x.shape[1] != m.in_channels)):
                    return m(x, *rest)  # unusual or wrong call: compute it (torch raises on a wrong shape)
                if linear:
                    return x.new_empty(x.shape[:-1] + (m.out_features,))
                n, _, h, w = x.shape
                k, s, d = m.kernel_size, m.stride, m.dilation
                if isinstance(m, torch.nn.ConvTranspose2d):
                    p, op = m.padding, m.output_padding
                    hw = [(size - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
                          for i, size in enumerate((h, w))]
                elif isinstance(m.padding, str):
                    hw = [h, w] if m.padding == "same" else [_conv_out(size, k[i], s[i], 0, d[i])
                                                            for i, size in enumerate((h, w))]
                else:
                    hw = [_conv_out(size, k[i], s[i], m.padding[i], d[i]) for i, size in enumerate((h, w))]
                return x.new_empty((n, m.out_channels, *hw))

        return ShapeOnly()


def _shape_of(value):
    """A traced value's shape: a tuple for a tensor, a list for a tuple of tensors (an lstm's outputs)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return tuple(int(d) for d in value.shape)
    if isinstance(value, (tuple, list)) and any(hasattr(v, "dtype") for v in value):
        return [_shape_of(v) for v in value]
    return None


def _propagate_shapes(gm, module, shape, torch) -> None:
    """Record every node's output shape (``node.meta[SHAPE]``) at batch 1, running a shape-only copy of the
    model on zeros (an fx Interpreter: torch's ShapeProp would import sympy, a second at start-up)."""
    from torch import fx

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            n.meta[SHAPE] = _shape_of(out)
            return out

    # One thread: the values are scratch (only shapes matter), and thread start-up and spinning on small
    # element-wise ops cost more than they save, several times more on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            Recorder(_shape_copy(gm, torch, {})).run(torch.zeros((1,) + shape))
    except Exception as exc:  # the model's own error on this input shape
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise E2simError(f"workload_from_torch: {type(module).__name__} fails on input {shape}: {msg}") from None
    finally:
        torch.set_num_threads(threads)


class _Importer:
    """Walks the traced graph once, in order, turning nodes into layer entries."""

    def __init__(self, gm, torch):
        self.gm, self.torch = gm, torch
        self.mods = dict(gm.named_modules())
        self.params = dict(gm.named_parameters())
        self.grad: dict = {}  # node -> its value needs a gradient
        self.layers: list[dict] = []
        self.names: set[str] = set()
        self.calls: Counter = Counter()  # module target or parameter name -> calls so far
        self.first_call: dict[str, str] = {}  # module target / parameter name -> name of its first layer
        self.fn_names: Counter = Counter()

    # -- helpers ---------------------------------------------------------------------------------------
    def tensor_inputs(self, node):
        out = []
        from torch.fx.node import map_arg

        map_arg((node.args, node.kwargs), lambda n: out.append(n))
        return out

    def shape(self, node, what="output"):
        shape = node.meta.get(SHAPE)
        if not isinstance(shape, tuple):
            raise E2simError(f"workload_from_torch: node {node.name}: {what} is not a single tensor")
        return shape

    @staticmethod
    def is_tensor(node) -> bool:
        return node.meta.get(SHAPE) is not None

    def fail(self, node, what):
        raise E2simError(f"workload_from_torch: node {node.name}: {what}")

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}#{n}"
        self.names.add(name)
        return name

    def owner_path(self, node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        last = list(stack.values())[-1]
        path = last[0] if isinstance(last, tuple) else last
        return str(path)

    def emit(self, node, name, kind, in_shape, out_shape, *, gin, owner=None, **kw):
        kw.setdefault("steps", 1)
        self.layers.append(dict(name=name, kind=kind, in_shape=in_shape, out_shape=out_shape,
                                needs_input_grad=gin, _owner=owner, **kw))

    def module_name(self, key: str, base: str | None = None) -> tuple[str, str | None]:
        """Layer name of this call of a module or weight ``key`` (``#n`` for the n-th call), and the name
        of the first call, which owns the weights (None for the first call itself)."""
        base = base or key
        self.calls[key] += 1
        name = self.unique(base if self.calls[key] == 1 else f"{base}#{self.calls[key]}")
        first = self.first_call.setdefault(key, name)
        return name, (None if first == name else first)

    # -- graph walk ------------------------------------------------------------------------------------
    def build(self, module, shape, *, name, dataset, batch_size, schedule) -> Workload:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.grad[node] = False
            elif node.op == "get_attr":
                p = self.params.get(node.target)
                self.grad[node] = bool(p is not None and p.requires_grad)
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op in ("call_function", "call_method"):
                self.call_function(node)
        if not self.layers:
            raise E2simError(f"workload_from_torch: {type(module).__name__} has no layer e2sim counts")
        return self.workload(module, shape, name=name, dataset=dataset, batch_size=batch_size,
                             schedule=schedule)

    def call_module(self, node):
        torch, nn = self.torch, self.torch.nn
        m = self.mods[node.target]
        tname = type(m).__name__
        ins = self.tensor_inputs(node)
        gin = any(self.grad.get(n, False) for n in ins)
        trainable = any(p.requires_grad for p in m.parameters(recurse=False))
        self.grad[node] = gin or trainable
        target = str(node.target)
        if tname in COST_FREE_MODULES:
            return
        if not ins:
            self.fail(node, f"module {target} ({tname}) has no tensor input")
        x = ins[0]
        xs = self.shape(x, "input")
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if len(xs) != 4:
                self.fail(node, f"{tname} {target} on a {len(xs)}-D input (e2sim takes batched 4-D inputs)")
            self.conv(node, target, "conv_transpose" if isinstance(m, nn.ConvTranspose2d) else "conv", xs,
                      m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups,
                      getattr(m, "output_padding", (0, 0)), gin)
            return
        if isinstance(m, (nn.LSTM, nn.GRU)):
            self.rnn(node, target, m, x, xs, ins, gin)
            return
        lname, shared = self.module_name(target)
        os_ = self.shape(node)
        if isinstance(m, nn.Linear):
            steps = math.prod(xs) // m.in_features
            self.emit(node, lname, "linear", (m.in_features, 1, 1), (m.out_features, 1, 1), gin=gin,
                      steps=steps, bias=m.bias is not None, needs_weight_grad=m.weight.requires_grad,
                      weights_from=shared)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            s = _elem_shape(xs)
            self.emit(node, lname, "batchnorm", s, s, gin=gin, weights_from=shared)
        elif tname in _ACT_MODULES:
            s = _elem_shape(os_)
            self.emit(node, lname, "relu", s, s, gin=gin)
        elif isinstance(m, (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid)):
            s = _elem_shape(os_)
            self.emit(node, lname, "sigmoid", s, s, gin=gin)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            kind = "maxpool" if "Max" in tname else "avgpool"
            if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                k = _pair(m.kernel_size)
                self.pool(node, lname, kind, xs, os_, k, _pair(m.stride or m.kernel_size), gin)
            else:
                self.pool(node, lname, kind, xs, os_, None, None, gin)
        else:
            self.fail(node, f"cannot count module {target} of type {tname}")

    def call_function(self, node):
        fname = _op_name(node)
        ins = self.tensor_inputs(node)
        gin = any(self.grad.get(n, False) for n in ins)
        self.grad[node] = gin
        fn = node.target
        if fname in COST_FREE_OPS or fn in (operator.getitem, getattr):
            return
        if not any(self.is_tensor(n) for n in ins):
            return  # arithmetic on sizes (x.shape[1] * 2): Python integers, no tensor work
        torch = self.torch
        # Parameters used directly (functional layers): trainability comes from the get_attr nodes.
        acts = [n for n in ins if n.op != "get_attr"]
        gin_act = any(self.grad.get(n, False) for n in acts)
        owner = self.owner_path(node)

        def fname_layer(kind):
            base = f"{owner}.{kind}" if owner else kind
            self.fn_names[base] += 1
            return self.unique(base if self.fn_names[base] == 1 else f"{base}{self.fn_names[base]}")

        if fname in ("conv2d", "conv_transpose2d"):
            x, w = node.args[0], self.arg(node, 1, "weight")
            wp = self.param_of(node, w)
            xs = self.shape(x, "input")
            if len(xs) != 4:
                self.fail(node, f"{fname} on a {len(xs)}-D input (e2sim takes batched 4-D inputs)")
            b = self.arg(node, 2, "bias", None)
            kw = ("stride", "padding", "output_padding", "groups", "dilation") if fname == "conv_transpose2d" \
                else ("stride", "padding", "dilation", "groups")
            defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "output_padding": 0}
            vals = {k: self.arg(node, 3 + i, k, defaults[k]) for i, k in enumerate(kw)}
            self.conv(node, str(w.target), "conv" if fname == "conv2d" else "conv_transpose", xs, wp,
                      b, vals["stride"], vals["padding"], vals["dilation"], vals["groups"],
                      vals.get("output_padding", 0), gin_act, owner=owner)
            return
        if fname == "linear":
            x, w = node.args[0], self.arg(node, 1, "weight")
            wp = self.param_of(node, w)
            b = self.arg(node, 2, "bias", None)
            out_f, in_f = (int(d) for d in wp.shape)
            lname, shared = self.module_name(str(w.target), f"{owner}.linear" if owner else "linear")
            self.emit(node, lname, "linear", (in_f, 1, 1), (out_f, 1, 1), gin=gin_act,
                      steps=math.prod(self.shape(x, "input")) // in_f, bias=b is not None,
                      needs_weight_grad=wp.requires_grad, weights_from=shared, owner=owner)
            return
        if fname in _MATMUL_OPS:
            self.matmul(node, fname_layer, owner)
            return
        if fn in (operator.add, operator.iadd, operator.sub, operator.isub) or fname in _ADD_OPS:
            kind = "add"
        elif fn in (operator.mul, operator.imul, operator.truediv, operator.itruediv) or fname in _MUL_OPS:
            kind = "mul"
        elif fname in _ACT_OPS:
            kind = "relu"
        elif fname in _SIGMOID_OPS:
            kind = "sigmoid"
        elif fname in _AVGPOOL_OPS or fname in _MAXPOOL_OPS:
            kind = "maxpool" if fname in _MAXPOOL_OPS else "avgpool"
            if not ins:
                self.fail(node, f"{fname} has no tensor input")
            xs, os_ = self.shape(ins[0], "input"), self.shape(node)
            k = s = None
            if fname in ("max_pool2d", "avg_pool2d"):
                k = _pair(self.arg(node, 1, "kernel_size"))
                s_arg = self.arg(node, 2, "stride", None)
                s = _pair(s_arg) if s_arg not in (None, [], ()) else k
            self.pool(node, fname_layer(kind), kind, xs, os_, k, s, gin, owner=owner)
            return
        else:
            self.fail(node, f"cannot count operation {fname} ({node.op}); supported: conv2d, "
                            f"conv_transpose2d, linear, matmul/bmm, add/sub, mul/div, activations, pooling, "
                            f"cost-free ops (e2sim.from_torch.COST_FREE_OPS)")
        if not ins:
            self.fail(node, f"{fname} has no tensor input")
        s = _elem_shape(self.shape(node))
        # Broadcast operands and scalars count at the output's size; a scalar is one more operand.
        n_inputs = max(2, len([a for a in node.args if not isinstance(a, (str, type(None)))])) \
            if kind in ("add", "mul") else 1
        extra = dict(n_inputs=n_inputs) if kind in ("add", "mul") else {}
        self.emit(node, fname_layer(kind), kind, s, s, gin=gin, owner=owner, **extra)

    # -- layer kinds -----------------------------------------------------------------------------------
    def arg(self, node, pos, key, default=...):
        if len(node.args) > pos:
            return node.args[pos]
        if key in node.kwargs:
            return node.kwargs[key]
        if default is ...:
            self.fail(node, f"missing argument {key}")
        return default

    def param_of(self, node, w):
        if getattr(w, "op", None) != "get_attr" or w.target not in self.params:
            self.fail(node, f"{_op_name(node)} whose weight is not a parameter of the model (e2sim counts "
                            f"weights that are parameters)")
        return self.params[w.target]

    def conv(self, node, key, kind, xs, weight, bias, stride, padding, dilation, groups, output_padding,
             gin, owner=None):
        os_ = self.shape(node)
        kernel = _pair(tuple(weight.shape[2:]))
        dil, st = _pair(dilation), _pair(stride)
        pad = _conv_padding(node, padding, kernel, dil)
        # A functional conv is named after the module that calls it; its weight decides sharing.
        lname, shared = self.module_name(key, None if owner is None else f"{owner}.{kind}" if owner else kind)
        self.emit(node, lname, kind, tuple(xs[1:]), tuple(os_[1:]), gin=gin, owner=owner, steps=xs[0],
                  kernel=kernel, stride=st, padding=pad, dilation=dil, groups=int(groups),
                  output_padding=_pair(output_padding), bias=bias is not None,
                  needs_weight_grad=weight.requires_grad, weights_from=shared)

    def pool(self, node, lname, kind, xs, os_, kernel, stride, gin, owner=None):
        if len(xs) != 4 or len(os_) not in (2, 4):
            self.fail(node, f"{kind} over a {len(xs)}-D input (e2sim pools batched 4-D maps)")
        if len(os_) == 2:  # mean over (H, W)
            os_ = (os_[0], os_[1], 1, 1)
        if os_[1] != xs[1]:
            self.fail(node, "pooling across channels")
        if kernel is None:  # adaptive or mean: the window that maps the input onto the output
            kernel = (xs[2] // os_[2], xs[3] // os_[3])
            stride = kernel
        self.emit(node, lname, kind, tuple(xs[1:]), tuple(os_[1:]), gin=gin, owner=owner, steps=xs[0],
                  kernel=kernel, stride=stride)

    def matmul(self, node, fname_layer, owner):
        ins = list(node.args[:2])
        if len(ins) != 2 or not all(hasattr(a, "op") for a in ins):
            self.fail(node, f"{_op_name(node)} needs two tensor operands")
        a, b = ins
        sa, sb, so = self.shape(a, "first operand"), self.shape(b, "second operand"), self.shape(node)
        if b.op == "get_attr" and b.target in self.params and len(sb) == 2:
            # x @ W with a parameter W (K, N): a linear layer without bias.
            wp = self.params[b.target]
            k, n = (int(d) for d in wp.shape)
            lname, shared = self.module_name(str(b.target), f"{owner}.linear" if owner else "linear")
            self.emit(node, lname, "linear", (k, 1, 1), (n, 1, 1), gin=self.grad.get(a, False), owner=owner,
                      steps=math.prod(sa) // k, needs_weight_grad=wp.requires_grad, weights_from=shared)
            return
        if a.op == "get_attr" or b.op == "get_attr":
            self.fail(node, f"{_op_name(node)} with a parameter operand other than a 2-D right-hand weight")
        m = sa[-2] if len(sa) >= 2 else 1
        k = sa[-1]
        n = sb[-1] if len(sb) >= 2 else 1
        batch = math.prod(so) // (m * n)
        self.emit(node, fname_layer("matmul"), "matmul", (batch, m, k), (batch, m, n), gin=self.grad.get(a, False),
                  owner=owner, needs_weight_grad=self.grad.get(b, False))

    def rnn(self, node, target, m, x, xs, ins, gin):
        nn = self.torch.nn
        kind = "lstm" if isinstance(m, nn.LSTM) else "gru"
        if getattr(m, "proj_size", 0):
            self.fail(node, f"{type(m).__name__} {target} with proj_size (not modelled)")
        if not m.bias:
            self.fail(node, f"{type(m).__name__} {target} without bias (e2sim models torch's biased gates)")
        steps = math.prod(xs) // m.input_size
        state = ins[1:]
        state_grad = any(self.grad.get(n, False) for n in state)
        dirs = 2 if m.bidirectional else 1
        trainable = any(p.requires_grad for p in m.parameters())
        for layer in range(m.num_layers):
            in_f = m.input_size if layer == 0 else m.hidden_size * dirs
            g_in = gin if layer == 0 else (gin or trainable or state_grad)
            for d in range(dirs):
                sub = f".l{layer}" + ("_reverse" if d else "")
                lname, shared = self.module_name(target + sub)
                w = getattr(m, f"weight_ih_l{layer}" + ("_reverse" if d else ""))
                self.emit(node, lname, kind, (in_f, 1, 1), (m.hidden_size, 1, 1), gin=g_in, steps=steps,
                          hidden=m.hidden_size, state_needs_grad=state_grad, needs_weight_grad=w.requires_grad,
                          weights_from=shared)

    # -- assembly --------------------------------------------------------------------------------------
    def workload(self, module, shape, *, name, dataset, batch_size, schedule) -> Workload:
        return assemble(self.layers, shape, name=name or type(module).__name__, dataset=dataset,
                        batch_size=batch_size, schedule=schedule, source="workload_from_torch")


def assemble(layers: list[dict], image_shape, *, name: str, dataset, batch_size: int, schedule,
             source: str) -> Workload:
    """A Workload from traced layer entries (``Layer`` fields plus ``_owner``, the module path that performs
    a functional op), shared by the torch and ONNX importers.

    Blocks: modules whose own forward adds tensors; the layers under a block's path belong to it, those
    under its ``downsample``/``shortcut`` child are its shortcut path; the first block always runs."""
    block_paths: list[str] = []
    for e in layers:
        if e["kind"] == "add" and e["_owner"] and e["_owner"] not in block_paths:
            block_paths.append(e["_owner"])
    first_block_idx = None
    built: list[Layer] = []
    try:
        for idx, e in enumerate(layers):
            e = dict(e)
            e.pop("_owner")
            lname = e["name"]
            block = next((b for b in block_paths if lname == b or lname.startswith(b + ".")), None)
            if block is not None:
                first_block_idx = idx if first_block_idx is None else first_block_idx
                rest = lname[len(block) + 1:]
                role = "shortcut" if rest.split(".")[0] in ("downsample", "shortcut") else "main"
            else:
                role = "stem" if first_block_idx is None else "head"
            fields = {k: v for k, v in e.items() if v is not None}
            built.append(validated(Layer, dict(block=block, role=role, **fields)))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()
        raise E2simError(f"{source}: layer {e['name']}: {' '.join(first[1:3]).strip()}") from None
    blocks = [Block(name=b, stage=0, gated=i > 0) for i, b in enumerate(block_paths)]
    classes = built[-1].out_shape[0]
    img = tuple(image_shape)
    if dataset is None:
        ds = next((d for d in DATASETS.values() if d.classes == classes and d.image_shape == img), None)
        if ds is None:
            ds = validated(Dataset, dict(name="custom", classes=classes, train_images=50_000, test_images=10_000,
                                         image_shape=img))
    elif isinstance(dataset, str):
        if dataset not in DATASETS:
            raise E2simError(f"{source}: unknown dataset {dataset!r}")
        ds = DATASETS[dataset]
    else:
        ds = dataset
    try:
        return validated(Workload, dict(name=name, model="custom", dataset=ds, batch_size=batch_size,
                                        schedule=schedule or Schedule(), layers=tuple(built), blocks=tuple(blocks)))
    except ValueError as exc:
        first = str(exc).splitlines()
        raise E2simError(f"{source}: {' '.join(first[1:3]).strip()}") from None
