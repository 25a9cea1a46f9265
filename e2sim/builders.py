"""Builders for the bundled models, layer by layer, with the same names as the torch modules in
``e2sim.train.models`` (so per-layer statistics from training map onto workload layers by name).

- CIFAR ResNets as in the official E2-Train code (GATECH-EIC/E2Train, after SkipNet's CIFAR ResNets):
  3x3 conv 3->16, three stages of n basic blocks with 16/32/64 channels (stride 2 at the first block of
  stages 2 and 3, with a 1x1 conv + BN downsample shortcut), global average pool, linear to the classes.
  Depth = 6n + 2: ResNet-20/38/74/110 have n = 3/6/12/18.
- MobileNetV2 for CIFAR (Sandler et al. 2018, Table 2 settings) with the usual CIFAR changes: a stride-1
  stem and stride 1 in the second stage, so a 32x32 input ends at 4x4 before the 1x1 conv to 1280.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .records import validated
from .workload import Block, Layer, Role

Shape = tuple[int, int, int]


class _Net:
    """Appends layers while tracking the current per-sample shape."""

    def __init__(self, image_shape: Shape):
        self.shape: Shape = tuple(image_shape)  # type: ignore[assignment]
        self.layers: list[Layer] = []
        self.blocks: list[Block] = []

    def _add(self, **kw) -> Layer:
        layer = validated(Layer, kw)  # builders' shapes follow the user's dataset: checked
        self.layers.append(layer)
        return layer

    def conv(self, name, cout, k, stride=1, pad=0, groups=1, shape: Shape | None = None,
             block=None, role: Role = "main") -> Shape:
        cin, h, w = shape or self.shape
        out = (cout, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        self._add(name=name, kind="conv", in_shape=(cin, h, w), out_shape=out, kernel=(k, k),
                  stride=(stride, stride), padding=(pad, pad), groups=groups, block=block, role=role,
                  needs_input_grad=bool(self.layers))
        return out

    def same(self, name, kind, shape: Shape, block=None, role: Role = "main", **kw) -> Shape:
        self._add(name=name, kind=kind, in_shape=shape, out_shape=shape, block=block, role=role, **kw)
        return shape

    def avgpool_global(self, name, role: Role = "head") -> Shape:
        c, _, _ = self.shape
        self._add(name=name, kind="avgpool", in_shape=self.shape, out_shape=(c, 1, 1),
                  kernel=self.shape[1:], stride=self.shape[1:], role=role)
        self.shape = (c, 1, 1)
        return self.shape

    def linear(self, name, cout, role: Role = "head", bias=True) -> Shape:
        cin = self.shape[0] * self.shape[1] * self.shape[2]
        self._add(name=name, kind="linear", in_shape=(cin, 1, 1), out_shape=(cout, 1, 1), bias=bias, role=role)
        self.shape = (cout, 1, 1)
        return self.shape


def resnet_cifar(depth: int, classes: int = 10, image_shape: Shape = (3, 32, 32)):
    """Layers and blocks of the CIFAR ResNet of the given depth (6n + 2)."""
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
    n = (depth - 2) // 6
    net = _Net(image_shape)
    s = net.conv("conv1", 16, 3, 1, 1, role="stem")
    s = net.same("bn1", "batchnorm", s, role="stem")
    net.shape = net.same("relu", "relu", s, role="stem")
    first = True
    for stage, planes in enumerate((16, 32, 64), start=1):
        for i in range(n):
            b = f"layer{stage}.{i}"
            # The first block of the network always runs (E2-Train / SkipNet); every other is gated.
            net.blocks.append(Block(name=b, stage=stage, gated=not first))
            first = False
            stride = 2 if (stage > 1 and i == 0) else 1
            x = net.shape
            s = net.conv(f"{b}.conv1", planes, 3, stride, 1, block=b)
            s = net.same(f"{b}.bn1", "batchnorm", s, block=b)
            s = net.same(f"{b}.relu1", "relu", s, block=b)
            s = net.conv(f"{b}.conv2", planes, 3, 1, 1, shape=s, block=b)
            s = net.same(f"{b}.bn2", "batchnorm", s, block=b)
            if stride != 1 or x[0] != planes:
                d = net.conv(f"{b}.downsample.0", planes, 1, stride, 0, shape=x, block=b, role="shortcut")
                net.same(f"{b}.downsample.1", "batchnorm", d, block=b, role="shortcut")
            s = net.same(f"{b}.add", "add", s, block=b, n_inputs=2)
            net.shape = net.same(f"{b}.relu2", "relu", s, block=b)
    net.avgpool_global("avgpool")
    net.linear("fc", classes)
    return net.layers, net.blocks


# (expansion t, output channels c, repeats n, first stride s); CIFAR variant: stage 2 stride 1.
MOBILENETV2_CIFAR_CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenetv2_cifar(classes: int = 10, image_shape: Shape = (3, 32, 32)):
    net = _Net(image_shape)
    s = net.conv("conv1", 32, 3, 1, 1, role="stem")
    s = net.same("bn1", "batchnorm", s, role="stem")
    net.shape = net.same("relu", "relu", s, role="stem", )
    idx, seen_residual = 0, False
    for stage, (t, c, reps, first_stride) in enumerate(MOBILENETV2_CIFAR_CFG, start=1):
        for r in range(reps):
            stride = first_stride if r == 0 else 1
            b = f"layers.{idx}"
            x = net.shape
            residual = stride == 1 and x[0] == c
            # Only blocks with an identity shortcut can be skipped (input passes through); as in the
            # ResNets, the first skippable block always runs.
            net.blocks.append(Block(name=b, stage=stage, gated=residual and seen_residual))
            seen_residual = seen_residual or residual
            hidden = x[0] * t
            s = x
            if t != 1:
                s = net.conv(f"{b}.conv1", hidden, 1, 1, 0, block=b)
                s = net.same(f"{b}.bn1", "batchnorm", s, block=b)
                s = net.same(f"{b}.relu1", "relu", s, block=b)
            s = net.conv(f"{b}.conv2", hidden, 3, stride, 1, groups=hidden, shape=s, block=b)
            s = net.same(f"{b}.bn2", "batchnorm", s, block=b)
            s = net.same(f"{b}.relu2", "relu", s, block=b)
            s = net.conv(f"{b}.conv3", c, 1, 1, 0, shape=s, block=b)
            s = net.same(f"{b}.bn3", "batchnorm", s, block=b)
            if residual:
                s = net.same(f"{b}.add", "add", s, block=b, n_inputs=2)
            net.shape = s
            idx += 1
    s = net.conv("conv2", 1280, 1, 1, 0, role="head")
    s = net.same("bn2", "batchnorm", s, role="head")
    net.shape = net.same("relu2", "relu", s, role="head")
    net.avgpool_global("avgpool")
    net.linear("fc", classes)
    return net.layers, net.blocks


# Inference networks of the published FPGA designs (validation/published/designs.csv). Forward only, so
# every layer is a "stem" (no SLU blocks) and batchnorm is left out: inference designs fold it into the
# convolution's weights and bias. Convolutions carry a bias; a ReLU follows each (leaky in YOLOv2: the same
# element-wise cost).


def _pool(net: _Net, name: str, k: int, stride: int) -> Shape:
    c, h, w = net.shape
    out = (c, (h - k) // stride + 1, (w - k) // stride + 1)
    net._add(name=name, kind="maxpool", in_shape=net.shape, out_shape=out, kernel=(k, k), stride=(stride, stride),
             role="stem")
    net.shape = out
    return out


def _conv_relu(net: _Net, name: str, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1,
               shape: Shape | None = None) -> Shape:
    s = net.conv(name, cout, k, stride, pad, groups=groups, shape=shape, role="stem")
    net.layers[-1] = dataclasses.replace(net.layers[-1], bias=True)
    net.shape = net.same(f"{name}.relu", "relu", s, role="stem")
    return net.shape


def _fc(net: _Net, name: str, cout: int, relu: bool = True) -> Shape:
    s = net.linear(name, cout)
    if relu:
        net.shape = net.same(f"{name}.relu", "relu", s, role="head")
    return net.shape


def alexnet(classes: int = 1000, image_shape: Shape = (3, 227, 227)):
    """AlexNet as in Caffe's bvlc_alexnet (Krizhevsky et al. 2012): 227x227 input, grouped conv2/4/5 (two
    GPUs), LRN omitted (no MACs). Forward: 724 M MACs, 666 M of them in the convolutions (1.33 GOP, the
    '1.3 GOP' of the survey rows)."""
    net = _Net(image_shape)
    _conv_relu(net, "conv1", 96, 11, 4)
    _pool(net, "pool1", 3, 2)
    _conv_relu(net, "conv2", 256, 5, 1, 2, groups=2)
    _pool(net, "pool2", 3, 2)
    _conv_relu(net, "conv3", 384, 3, 1, 1)
    _conv_relu(net, "conv4", 384, 3, 1, 1, groups=2)
    _conv_relu(net, "conv5", 256, 3, 1, 1, groups=2)
    _pool(net, "pool5", 3, 2)
    _fc(net, "fc6", 4096)
    _fc(net, "fc7", 4096)
    _fc(net, "fc8", classes, relu=False)
    return net.layers, net.blocks


def vgg16(classes: int = 1000, image_shape: Shape = (3, 224, 224)):
    """VGG-16 (Simonyan & Zisserman 2015, configuration D): 13 3x3 convolutions, 5 max-pools, 3 FC layers.
    Forward: 15.47 G MACs (30.9 GOP), 15.35 G of them in the convolutions."""
    net = _Net(image_shape)
    for stage, (width, reps) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(reps):
            _conv_relu(net, f"conv{stage}_{i + 1}", width, 3, 1, 1)
        _pool(net, f"pool{stage}", 2, 2)
    _fc(net, "fc6", 4096)
    _fc(net, "fc7", 4096)
    _fc(net, "fc8", classes, relu=False)
    return net.layers, net.blocks


def yolov2(classes: int = 80, image_shape: Shape = (3, 416, 416)):
    """YOLOv2 as darknet's cfg/yolov2.cfg (Redmon & Farhadi 2017) at 416x416: 22 convolutions of the
    Darknet-19 trunk and head, the passthrough (1x1 conv to 64 on the 26x26x512 map, reorg to 13x13x256,
    concatenated to 1280 channels), and the 1x1 detection conv to 5 x (5 + classes) = 425 maps. The reorg and
    the concatenation move data without MACs and are not listed. Forward: 14.74 G MACs (darknet reports
    29.47 BFLOPs)."""
    net = _Net(image_shape)
    cfg = [(32, 3), "M", (64, 3), "M", (128, 3), (64, 1), (128, 3), "M", (256, 3), (128, 1), (256, 3), "M",
           (512, 3), (256, 1), (512, 3), (256, 1), (512, 3), "M",
           (1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3), (1024, 3), (1024, 3)]
    passthrough = None
    for i, item in enumerate(cfg):
        if item == "M":
            if net.shape[1] == 26:
                passthrough = net.shape  # 26x26x512, the route source
            _pool(net, f"pool{i}", 2, 2)
            continue
        cout, k = item
        _conv_relu(net, f"conv{i}", cout, k, 1, k // 2)
    trunk = net.shape
    _conv_relu(net, "route_conv", 64, 1, 1, 0, shape=passthrough)
    c, h, w = net.shape
    net.shape = (trunk[0] + c * 4, h // 2, w // 2)  # reorg (stride 2) and concatenation: data movement only
    _conv_relu(net, "conv_cat", 1024, 3, 1, 1)
    s = net.conv("detect", 5 * (5 + classes), 1, 1, 0, role="stem")
    net.layers[-1] = dataclasses.replace(net.layers[-1], bias=True)
    net.shape = s
    return net.layers, net.blocks


def cnv(classes: int = 10, image_shape: Shape = (3, 32, 32)):
    """The CNV network of FINN (Umuroglu et al., FPGA'17) for CIFAR-10: (2x conv 64, pool, 2x conv 128, pool,
    2x conv 256) with unpadded 3x3 convolutions, then FC 256->512->512->classes. Forward: 59.5 M MACs
    (0.119 GOP; the FINN rows say ~0.113 GOP/img). Binary in FINN, so outside the MAC model there; the
    workload serves integer (2..32-bit) designs."""
    net = _Net(image_shape)
    for stage, width in enumerate((64, 128, 256), start=1):
        _conv_relu(net, f"conv{stage}_1", width, 3)
        _conv_relu(net, f"conv{stage}_2", width, 3)
        if stage < 3:
            _pool(net, f"pool{stage}", 2, 2)
    _fc(net, "fc1", 512)
    _fc(net, "fc2", 512)
    _fc(net, "fc3", classes, relu=False)
    return net.layers, net.blocks


def _resnet(depth: int) -> Callable:
    def build(classes: int = 10, image_shape: Shape = (3, 32, 32)):
        return resnet_cifar(depth, classes, image_shape)

    build.__doc__ = f"CIFAR ResNet-{depth}"
    return build


BUILDERS: dict[str, Callable] = {
    "resnet20": _resnet(20),
    "resnet38": _resnet(38),
    "resnet74": _resnet(74),
    "resnet110": _resnet(110),
    "mobilenetv2": mobilenetv2_cifar,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "yolov2": yolov2,
    "cnv": cnv,
}
