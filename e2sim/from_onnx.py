"""Import an ONNX model as a Workload (the optional ``onnx`` extra: ``pip install e2sim[onnx]``).

Shapes come from ONNX shape inference at the model's batch size (the first dimension is the batch and is
dropped). Initializers are the trainable weights; the graph inputs need no gradient, so gradients follow the
same rule as ``workload_from_torch``: a layer has an input-gradient GEMM only if a weight lies upstream.
Layer names come from the node names' scopes (``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``, as torch's
exporter writes them), so residual blocks are found as in the torch import. A model exported from torch with
``training=TrainingMode.TRAINING`` (batchnorms kept, not folded into the convs) imports to the same counts as
the torch module. Operators e2sim cannot count are a one-line error naming the operator and the node;
``COST_FREE_OPS`` lists those without arithmetic.
"""
from __future__ import annotations

import math
from pathlib import Path

from .errors import E2simError
from .from_torch import assemble, fold3

COST_FREE_OPS = frozenset({
    "Flatten", "Reshape", "Identity", "Dropout", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
    "Gather", "Shape", "Constant", "ConstantOfShape", "Cast", "Expand", "Pad", "Tile",
})
_ACTS = {"Relu", "Clip", "LeakyRelu", "Elu", "Gelu", "HardSwish", "Mish"}
_SIGMOIDS = {"Sigmoid", "Tanh", "HardSigmoid"}
_ELEMWISE = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}


def _scope_name(node_name: str, op: str) -> tuple[str, str]:
    """(module path, layer base name) of a node named by torch's exporter, ``/a/a.0/conv1/Conv``."""
    parts = [p for p in node_name.split("/") if p]
    path = ""
    for p in parts[:-1]:
        path = p if not path or p.startswith(path + ".") else f"{path}.{p}"
    return path, path or node_name or op


def workload_from_onnx(path: str | Path, *, name: str | None = None, dataset=None, batch_size: int = 128):
    """Read ``path`` (an ONNX model) and build its Workload."""
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        raise E2simError("import: reading ONNX needs the optional 'onnx' package (pip install e2sim[onnx])") from None
    p = Path(path)
    try:
        model = shape_inference.infer_shapes(onnx.load(str(p)), data_prop=True)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise E2simError(f"{p}: not a readable ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes: dict[str, tuple[int, ...]] = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = tuple(int(d.dim_value) for d in dims)
    for k, a in inits.items():
        shapes[k] = tuple(a.shape)
    inputs = [v for v in g.input if v.name not in inits]
    if len(inputs) != 1 or len(shapes.get(inputs[0].name, ())) != 4:
        raise E2simError(f"{p}: expected one (N, C, H, W) input, got {[v.name for v in inputs]}")
    in_name = inputs[0].name
    batch = shapes[in_name][0]
    grad = {in_name: False}
    layers: list[dict] = []
    used: dict[str, int] = {}

    def fail(node, what):
        raise E2simError(f"{p}: node {node.name or node.op_type}: {what}")

    def shape(name, node):
        if name not in shapes:
            fail(node, f"no inferred shape for {name!r}")
        return shapes[name]

    def per_sample(s):  # the first dimension is the batch
        return fold3(s[1:])

    def lname(base):
        used[base] = used.get(base, 0) + 1
        return base if used[base] == 1 else f"{base}#{used[base]}"

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    # Values computed from initializers and constants only (weights re-laid out by Slice/Concat/Transpose,
    # shape arithmetic): weights where a layer consumes them, never layers themselves.
    const = set(inits)
    floats = {v.name for v in list(g.value_info) + list(g.output) + list(g.input)
              if v.type.tensor_type.elem_type in (1, 10, 11, 16)}
    typed = {v.name for v in list(g.value_info) + list(g.output) + list(g.input)}
    linear_out: dict[str, dict] = {}  # output of a MatMul with a weight -> its entry (a bias Add follows)
    for node in g.node:
        op = node.op_type
        ins = [i for i in node.input if i]
        if op == "Constant" or (ins and all(i in const for i in ins) and op not in ("LSTM", "GRU")):
            const.update(node.output)
            continue
        if node.output and node.output[0] in typed and node.output[0] not in floats:
            const.update(node.output)
            continue  # integer shape arithmetic (Shape, Gather, Mul on sizes)
        if op == "Add" and len(node.input) == 2 and any(i in linear_out for i in node.input) \
                and any(i in const for i in node.input):
            # torch exports Linear on an N-D tensor as MatMul + Add(bias): the bias belongs to the layer.
            src = next(i for i in node.input if i in linear_out)
            linear_out[src]["bias"] = True
            grad[node.output[0]] = grad[src]
            continue
        data = [i for i in node.input if i and i not in const]
        gin = any(grad.get(i, False) for i in data)
        has_w = any(i in const and i in floats | set(inits) for i in node.input[1:] if i)
        for o in node.output:
            grad[o] = gin or (has_w and op not in COST_FREE_OPS and op not in _ELEMWISE)
        if op in COST_FREE_OPS:
            continue
        owner, base = _scope_name(node.name, op)
        x = node.input[0]
        xs, os_ = shape(x, node), shape(node.output[0], node)
        a = attrs(node)
        entry: dict
        if op in ("Conv", "ConvTranspose"):
            w = inits.get(node.input[1])
            if w is None:
                fail(node, f"{op} whose weight is not an initializer")
            pads = list(a.get("pads", [0, 0, 0, 0]))
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else str(auto)
            if auto.startswith("SAME") and op == "Conv":  # output = ceil(input / stride)
                st, dil = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
                total = [max((-(-xs[2 + i] // st[i]) - 1) * st[i] + dil[i] * (w.shape[2 + i] - 1) + 1 - xs[2 + i], 0)
                         for i in range(2)]
                pads = [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
            elif auto not in ("NOTSET", "VALID"):
                fail(node, f"{op} with auto_pad {auto}")
            if pads[:2] != pads[2:]:
                fail(node, f"{op} with asymmetric pads {pads}")
            entry = dict(kind="conv" if op == "Conv" else "conv_transpose", in_shape=tuple(xs[1:]),
                         out_shape=tuple(os_[1:]), kernel=tuple(int(k) for k in w.shape[2:]),
                         stride=tuple(a.get("strides", [1, 1])), padding=tuple(pads[:2]),
                         dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)),
                         bias=len(node.input) > 2 and bool(node.input[2]))
            if op == "ConvTranspose":
                entry["output_padding"] = tuple(a.get("output_padding", [0, 0]))
        elif op == "Gemm" or (op == "MatMul" and node.input[1] in const):
            if node.input[1] not in const:
                fail(node, "Gemm whose weight is not computed from initializers")
            ws = shape(node.input[1], node)
            k, n = (ws[1], ws[0]) if a.get("transB", 0) else tuple(ws)
            entry = dict(kind="linear", in_shape=(int(k), 1, 1), out_shape=(int(n), 1, 1),
                         steps=math.prod(xs) // (batch * int(k)), bias=len(node.input) > 2 and bool(node.input[2]))
            if op == "MatMul":
                linear_out[node.output[0]] = entry
        elif op == "MatMul":
            bs = shape(node.input[1], node)
            m, kk, n = (xs[-2] if len(xs) > 1 else 1), xs[-1], (bs[-1] if len(bs) > 1 else 1)
            bt = math.prod(os_) // (batch * m * n)
            entry = dict(kind="matmul", in_shape=(bt, m, kk), out_shape=(bt, m, n),
                         needs_weight_grad=grad.get(node.input[1], False))
            gin = grad.get(x, False)
            base = f"{owner}.matmul" if owner else "matmul"
        elif op in ("LSTM", "GRU"):
            if any(i not in const for i in node.input[1:4] if i):
                fail(node, f"{op} whose weights are not computed from initializers")
            t, n_batch, in_f = xs
            h = int(a["hidden_size"])
            direction = a.get("direction", b"forward")
            direction = direction.decode() if isinstance(direction, bytes) else str(direction)
            state = node.input[5] if len(node.input) > 5 and node.input[5] else None
            for d in range(2 if direction == "bidirectional" else 1):
                layers.append(dict(kind=op.lower(), in_shape=(in_f, 1, 1), out_shape=(h, 1, 1), steps=t, hidden=h,
                                   state_needs_grad=bool(state and grad.get(state, False)),
                                   name=lname(base + ("_reverse" if d else "")), needs_input_grad=gin,
                                   _owner=owner))
            for o in node.output:
                grad[o] = True
            continue
        elif op == "BatchNormalization":
            s = per_sample(xs)
            entry = dict(kind="batchnorm", in_shape=s, out_shape=s)
        elif op in _ACTS or op in _SIGMOIDS:
            s = per_sample(os_)
            entry = dict(kind="relu" if op in _ACTS else "sigmoid", in_shape=s, out_shape=s)
        elif op in _ELEMWISE:
            s = per_sample(os_)
            entry = dict(kind=_ELEMWISE[op], in_shape=s, out_shape=s, n_inputs=2)
            base = f"{owner}.{_ELEMWISE[op]}" if owner else _ELEMWISE[op]
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean"):
            kind = "maxpool" if "Max" in op else "avgpool"
            o4 = os_ if len(os_) == 4 else (os_[0], os_[1], 1, 1)
            if op in ("MaxPool", "AveragePool"):
                k = tuple(a["kernel_shape"])
                st = tuple(a.get("strides", k))
            else:
                k = st = (xs[2] // o4[2], xs[3] // o4[3])
            if len(xs) != 4 or o4[1] != xs[1]:
                fail(node, f"{op} other than a spatial pooling")
            entry = dict(kind=kind, in_shape=tuple(xs[1:]), out_shape=tuple(o4[1:]), kernel=k, stride=st)
        else:
            fail(node, f"cannot count operator {op} (supported: Conv, ConvTranspose, Gemm, MatMul, "
                       f"BatchNormalization, activations, Add/Sub/Mul/Div, pooling; cost-free: "
                       f"e2sim.from_onnx.COST_FREE_OPS)")
        entry.update(name=lname(base), needs_input_grad=gin, _owner=owner)
        layers.append(entry)
    if not layers:
        raise E2simError(f"{p}: no layer e2sim counts")
    return assemble(layers, shapes[in_name][1:], name=name or p.stem, dataset=dataset, batch_size=batch_size,
                    schedule=None, source=str(p))
