"""Import any torch.nn.Module CNN as a Workload (torch.fx trace + shape propagation).

Residual blocks are found from the trace: a module whose own forward performs a tensor addition is a
block; every layer inside it belongs to it (layers under a child named ``downsample``/``shortcut`` are its
shortcut path, which selective layer update never skips). The first block always runs; the others are gated.
Modules without cost (Flatten, Dropout, Identity) and pure reshapes are dropped; anything else unknown is
an error rather than a silent zero.
"""
from __future__ import annotations

import operator
from collections import Counter

from .errors import E2simError
from .workload import DATASETS, Block, Dataset, Layer, Schedule, Workload

_FREE_MODULES = ("Flatten", "Dropout", "Dropout2d", "Identity", "Unflatten")
_FREE_FUNCS = {"flatten", "reshape", "view", "contiguous", "squeeze", "unsqueeze", "size", "dropout", "getattr",
               "getitem", "clone", "detach", "float", "to"}
_ACTS = {"ReLU", "ReLU6", "LeakyReLU", "Hardtanh", "SiLU", "GELU", "Hardswish", "ELU"}
_ADD_FUNCS = {operator.add, operator.iadd}


def _shape3(shape) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in shape[1:])
    if len(dims) == 3:
        return dims  # type: ignore[return-value]
    if len(dims) == 1:
        return (dims[0], 1, 1)
    raise E2simError(f"workload_from_torch: unsupported activation shape {tuple(shape)}")


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def workload_from_torch(module, input_shape, *, name: str | None = None, dataset: str | Dataset | None = None,
                        batch_size: int = 128, schedule: Schedule | None = None) -> Workload:
    """Trace ``module`` on a zero input of ``input_shape`` ((C, H, W) or (N, C, H, W)) and build its Workload."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or min(shape) < 1:
        raise E2simError(f"workload_from_torch: input_shape must be (C, H, W) or (N, C, H, W), got {input_shape}")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many types for untraceable control flow
        raise E2simError(f"workload_from_torch: cannot trace {type(module).__name__} with torch.fx: {exc}") from None
    was_training = module.training
    module.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(shape))
    module.train(was_training)
    mods = dict(gm.named_modules())

    def out_shape(node):
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise E2simError(f"workload_from_torch: node {node.name} has no single tensor output")
        return _shape3(meta.shape)

    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    # A value that is the network input, possibly through cost-free reshapes.
    from_input = {placeholder}
    layers: list[dict] = []
    adds_by_owner: dict[str, int] = Counter()

    def owner_path(node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        last = list(stack.values())[-1]
        path = last[0] if isinstance(last, tuple) else last
        return str(path)

    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        tensor_args = [a for a in node.args if isinstance(a, fx.Node)]
        if not tensor_args:
            continue
        first = tensor_args[0]
        ins = _shape3(first.meta["tensor_meta"].shape) if "tensor_meta" in first.meta else None
        gin = first not in from_input
        entry: dict | None = None
        if node.op == "call_module":
            m = mods[node.target]
            tname = type(m).__name__
            if isinstance(m, nn.Conv2d):
                entry = dict(kind="conv", kernel=_pair(m.kernel_size), stride=_pair(m.stride),
                             padding=_pair(m.padding), groups=m.groups, bias=m.bias is not None)
                if m.dilation not in (1, (1, 1)):
                    raise E2simError(f"workload_from_torch: {node.target}: dilated convolutions are not supported")
            elif isinstance(m, nn.Linear):
                entry = dict(kind="linear", bias=m.bias is not None)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                entry = dict(kind="batchnorm")
            elif tname in _ACTS:
                entry = dict(kind="relu")
            elif isinstance(m, nn.Sigmoid):
                entry = dict(kind="sigmoid")
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                o = out_shape(node)
                assert ins is not None
                kind = "maxpool" if "Max" in tname else "avgpool"
                if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                    entry = dict(kind=kind, kernel=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size))
                else:
                    entry = dict(kind=kind, kernel=(ins[1] // o[1], ins[2] // o[2]),
                                 stride=(ins[1] // o[1], ins[2] // o[2]))
            elif tname in _FREE_MODULES:
                entry = None
            else:
                raise E2simError(f"workload_from_torch: {node.target}: unsupported module type {tname}")
            lname = str(node.target)
        elif node.op in ("call_function", "call_method"):
            fn = node.target
            fname = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
            is_add = fn in _ADD_FUNCS or fname in ("add", "add_", "iadd") or fn is getattr(torch, "add", None)
            if is_add and len(tensor_args) >= 2:
                entry = dict(kind="add", n_inputs=len(tensor_args))
            elif fname in ("relu", "relu_", "relu6", "hardtanh"):
                entry = dict(kind="relu")
            elif fname in ("sigmoid",):
                entry = dict(kind="sigmoid")
            elif fname in ("adaptive_avg_pool2d", "avg_pool2d", "mean"):
                o = out_shape(node)
                assert ins is not None
                k = (ins[1] // o[1], ins[2] // o[2])
                entry = dict(kind="avgpool", kernel=k, stride=k)
            elif fname in _FREE_FUNCS:
                entry = None
            else:
                raise E2simError(f"workload_from_torch: node {node.name}: unsupported operation {fname}")
            owner = owner_path(node)
            base = f"{owner}.{entry['kind']}" if (entry and owner) else (entry["kind"] if entry else node.name)
            adds_by_owner[base] += 1
            lname = base if adds_by_owner[base] == 1 else f"{base}{adds_by_owner[base]}"
        else:
            continue
        if entry is None:
            if first in from_input:
                from_input.add(node)
            continue
        o = out_shape(node)
        if entry["kind"] in ("linear",) and ins is not None:
            ins = (ins[0] * ins[1] * ins[2], 1, 1)
        entry.update(name=lname, in_shape=ins, out_shape=o, needs_input_grad=gin,
                     _owner=owner_path(node) if node.op != "call_module" else None)
        layers.append(entry)

    # Blocks: modules whose own forward adds tensors.
    block_paths = []
    for e in layers:
        if e["kind"] == "add" and e["_owner"] and e["_owner"] not in block_paths:
            block_paths.append(e["_owner"])
    first_block_idx = None
    built: list[Layer] = []
    for idx, e in enumerate(layers):
        owner = e.pop("_owner")
        del owner
        lname = e["name"]
        block = next((b for b in block_paths if lname == b or lname.startswith(b + ".")), None)
        if block is not None:
            first_block_idx = idx if first_block_idx is None else first_block_idx
            rest = lname[len(block) + 1:]
            role = "shortcut" if rest.split(".")[0] in ("downsample", "shortcut") else "main"
        else:
            role = "stem" if first_block_idx is None else "head"
        built.append(Layer(block=block, role=role, **e))
    blocks = [Block(name=b, stage=0, gated=i > 0) for i, b in enumerate(block_paths)]
    classes = built[-1].out_shape[0]
    img = tuple(shape[1:])
    if dataset is None:
        ds = next((d for d in DATASETS.values() if d.classes == classes and d.image_shape == img), None)
        if ds is None:
            ds = Dataset(name="custom", classes=classes, train_images=50_000, test_images=10_000, image_shape=img)
    elif isinstance(dataset, str):
        if dataset not in DATASETS:
            raise E2simError(f"workload_from_torch: unknown dataset {dataset!r}")
        ds = DATASETS[dataset]
    else:
        ds = dataset
    return Workload(name=name or type(module).__name__, model="custom", dataset=ds, batch_size=batch_size,
                    schedule=schedule or Schedule(), layers=tuple(built), blocks=tuple(blocks))
