"""workload_from_torch against torch's FlopCounterMode, pass by pass, on networks written here (not e2sim's).

Per-pass oracle from three FlopCounterMode runs of one training iteration (FLOPs = 2 x MACs):
- A: parameters trainable, input without gradient (as in training): forward, and the backward e2sim counts;
- B: parameters trainable, input with gradient; C: parameters frozen, input with gradient. Every activation
  needs a gradient in both B and C, so B - C is exactly the weight-gradient work, and A - (B - C) the
  input-gradient work of training.
Documented differences: torch 2.13 counts a grouped (or grouped transposed) conv's weight gradient ``groups``
times (pytorch#183405); the gradient of a matmul's second operand, an activation, is torch's input-gradient
work and e2sim's ``bwd_weight`` (the B operand of the GEMM). FlopCounterMode sees an LSTM only with oneDNN off
(oneDNN's fused RNN kernel has no FLOP formula).
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import e2sim  # noqa: E402
from e2sim.counts import P, count  # noqa: E402
from e2sim.errors import E2simError  # noqa: E402

BATCH = 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The networks are tiny: one thread avoids oversubscription on the shared CI cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------- networks
class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ReLU module called twice."""

    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (ResNet-50): 1x1, 3x3 (stride), 1x1 x4; one ReLU module called three times."""

    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet (7x7/2 stem, max-pool, four stages, global pool, fc) at a chosen base width."""

    def __init__(self, block, layers, width=64, classes=10):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(block, width, layers[0])
        self.layer2 = self._make(block, width * 2, layers[1], 2)
        self.layer3 = self._make(block, width * 4, layers[2], 2)
        self.layer4 = self._make(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, classes)

    def _make(self, block, planes, n, stride=1):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        blocks = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = [] if t == 1 else [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(True), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 0.25 here): stride-2 stem, inverted residuals, dropout + linear head."""

    cfg = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, width=0.25, classes=10):
        super().__init__()
        c = max(8, int(32 * width))
        feats = [nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6(True))]
        for t, co, n, s in self.cfg:
            co = max(8, int(co * width))
            for i in range(n):
                feats.append(InvertedResidual(c, co, s if i == 0 else 1, t))
                c = co
        feats.append(nn.Sequential(nn.Conv2d(c, 320, 1, bias=False), nn.BatchNorm2d(320), nn.ReLU6(True)))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(320, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class VGG16(nn.Module):
    """torchvision's VGG-16 (channels / 8, 32x32 input, 1x1 adaptive pool): conv stacks with max-pools,
    a Linear/ReLU/Dropout classifier."""

    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, div=8, classes=10):
        super().__init__()
        layers, c = [], 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v // div, 3, padding=1), nn.ReLU(True)]
                c = v // div
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Linear(c, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, 64),
                                        nn.ReLU(True), nn.Dropout(), nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class Fire(nn.Module):
    def __init__(self, cin, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU(True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU(True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """torchvision's SqueezeNet 1.1 (fire modules with concatenation; ceil-mode max-pools; conv classifier)."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 16, 16), Fire(32, 4, 16, 16), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(32, 8, 32, 32), Fire(64, 8, 32, 32))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(64, classes, 1), nn.ReLU(True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, r, 1)
        self.fc2 = nn.Conv2d(r, c, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class MBConv(nn.Module):
    """EfficientNet's MBConv: expand, depthwise 5x5, squeeze-and-excitation, project, residual."""

    def __init__(self, c, t=4, k=5):
        super().__init__()
        h = c * t
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(h, h, k, padding=k // 2, groups=h, bias=False), nn.BatchNorm2d(h),
                                nn.SiLU())
        self.se = SqueezeExcite(h, max(1, c // 4))
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.se(self.dw(self.expand(x))))


class EfficientNetBlock(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.block1 = MBConv(16)
        self.block2 = MBConv(16)
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.head(x.mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(True)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(4 * growth), nn.ReLU(True)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1)  # the list-argument call of torchvision's _DenseLayer
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseNet(nn.Module):
    """DenseNet-style: dense layers concatenating every earlier feature map, a transition, a dense block."""

    def __init__(self, growth=8, classes=10):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.block1 = nn.ModuleList([DenseLayer(16 + i * growth, growth) for i in range(3)])
        c = 16 + 3 * growth
        self.transition = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, c // 2, 1, bias=False),
                                        nn.AvgPool2d(2, 2))
        self.block2 = nn.ModuleList([DenseLayer(c // 2 + i * growth, growth) for i in range(2)])
        self.norm5 = nn.BatchNorm2d(c // 2 + 2 * growth)
        self.classifier = nn.Linear(c // 2 + 2 * growth, classes)

    def forward(self, x):
        feats = [self.conv0(x)]
        for layer in self.block1:
            feats.append(layer(feats))
        x = self.transition(torch.cat(feats, 1))
        feats = [x]
        for layer in self.block2:
            feats.append(layer(feats))
        x = F.relu(self.norm5(torch.cat(feats, 1)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class UNet(nn.Module):
    """U-Net-style: two encoder levels, a bottleneck, a decoder with ConvTranspose2d up-sampling (one with
    output_padding), skip concatenation, a 1x1 output conv."""

    def __init__(self, classes=3):
        super().__init__()

        def double(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                                 nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

        self.enc1, self.enc2, self.mid = double(3, 8), double(8, 16), double(16, 32)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec2 = double(32, 16)
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec1 = double(16, 8)
        self.out = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))  # the pool module is called twice
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.out(d1)


class DilatedNet(nn.Module):
    """Dilated convs (DeepLab-style context module) after a pooled input; padding='same'; a grouped
    transposed conv at the end."""

    def __init__(self, classes=5):
        super().__init__()
        self.pool = nn.AvgPool2d(2)  # the first conv's input is pooled network input: no input gradient
        self.conv1 = nn.Conv2d(3, 16, 3, padding="same", dilation=2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=4, dilation=4, bias=False)
        self.conv3 = nn.Conv2d(16, 16, (3, 5), padding="same", dilation=(1, 3), groups=4)
        self.up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, groups=2, dilation=1)
        self.cls = nn.Conv2d(8, classes, 1, padding="valid")

    def forward(self, x):
        x = self.pool(x)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.cls(self.up(x))


class CNNLSTM(nn.Module):
    """CRNN-style CNN-LSTM: conv features, columns as a sequence, a 2-layer bidirectional LSTM, a GRU, and a
    per-step linear classifier on the 3-D sequence tensor."""

    def __init__(self, classes=7):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(True), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(True), nn.MaxPool2d((4, 1)))
        self.lstm = nn.LSTM(16 * 2, 12, num_layers=2, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(24, 10)  # sequence-first
        self.fc = nn.Linear(10, classes)

    def forward(self, x):
        f = self.cnn(x)  # (N, 16, 2, W)
        n, c, h, w = f.shape
        seq = f.permute(0, 3, 1, 2).reshape(n, w, c * h)
        y, _ = self.lstm(seq)
        z, _ = self.gru(y.transpose(0, 1))
        return self.fc(z)  # (W, N, classes): Linear on a 3-D tensor


class Functional(nn.Module):
    """Functional forms and the remaining patterns: cat of the input before the first conv, F.conv2d with a
    parameter, a conv module called twice (shared weights), Linear on a 4-D tensor with out_features > 1,
    F.linear, matmul between two activations, a scalar multiply and a frozen layer."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 6, 3, 3) * 0.1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.frozen = nn.Conv2d(8, 8, 1)
        self.frozen.requires_grad_(False)
        self.last = nn.Linear(8, 5)
        self.q = nn.Parameter(torch.randn(6, 40) * 0.1)

    def forward(self, x):
        x = torch.cat((x, x), dim=1)
        x = F.relu(F.conv2d(x, self.w, None, 1, 1))
        x = self.shared(self.frozen(self.shared(x))) * 0.5
        y = self.last(x)  # (N, 8, 8, 5)
        a = F.linear(y.flatten(2), self.q)  # (N, 8, 6)
        att = torch.matmul(a, a.transpose(1, 2))  # (N, 8, 8), both operands need gradients
        return torch.bmm(att, y.flatten(2))


ARCHS = {
    "resnet18": (lambda: ResNet(BasicBlock, (2, 2, 2, 2), width=8), (3, 32, 32)),
    "resnet50": (lambda: ResNet(Bottleneck, (3, 4, 6, 3), width=4), (3, 32, 32)),
    "mobilenetv2": (MobileNetV2, (3, 32, 32)),
    "vgg16": (VGG16, (3, 32, 32)),
    "squeezenet": (SqueezeNet, (3, 31, 31)),
    "efficientnet_se": (EfficientNetBlock, (3, 16, 16)),
    "densenet": (DenseNet, (3, 16, 16)),
    "unet": (UNet, (3, 16, 16)),
    "dilated": (DilatedNet, (3, 24, 24)),
    "cnn_lstm": (CNNLSTM, (3, 16, 12)),
    "functional": (Functional, (3, 8, 8)),
}


# ---------------------------------------------------------------------------------------------- oracle
def _run(module, trainable, x, params: bool, input_grad: bool) -> tuple[int, int]:
    for p in trainable:
        p.requires_grad_(params)
    x = x.detach().requires_grad_(input_grad)
    # oneDNN's fused LSTM has no FLOP formula; without it torch runs the LSTM as matrix products.
    rnn = any(isinstance(m, nn.LSTM) for m in module.modules())
    with torch.backends.mkldnn.flags(enabled=not rnn), FlopCounterMode(display=False) as fc:
        out = module(x)
        fwd = fc.get_total_flops()
        out.sum().backward()
    return fwd // 2, (fc.get_total_flops() - fwd) // 2


def oracle_passes(module, in_shape) -> dict[str, int]:
    """Per-pass MACs of one training iteration at batch BATCH (see the module docstring)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    torch.manual_seed(0)
    x = torch.randn(BATCH, *in_shape)
    module.train()
    fwd, bwd_a = _run(module, trainable, x, True, False)
    _, bwd_b = _run(module, trainable, x, True, True)
    _, bwd_c = _run(module, trainable, x, False, True)
    for p in trainable:
        p.requires_grad_(True)
    return {"fwd": fwd, "bwd_input": bwd_a - (bwd_b - bwd_c), "bwd_weight": bwd_b - bwd_c}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_passes_equal_flopcountermode(arch):
    make, in_shape = ARCHS[arch]
    torch.manual_seed(0)
    module = make()
    w = e2sim.workload_from_torch(module, in_shape, batch_size=BATCH)
    c = count(w)
    macs = {p: c.macs[:, P[p]] for p in ("fwd", "bwd_input", "bwd_weight")}
    kinds = [layer.kind for layer in w.layers]
    # torch's documented overcount of grouped weight gradients, and the matmul B-operand convention.
    overcount = sum(int(macs["bwd_weight"][i]) * (layer.groups - 1) for i, layer in enumerate(w.layers)
                    if layer.kind in ("conv", "conv_transpose"))
    b_operand = sum(int(macs["bwd_weight"][i]) for i, k in enumerate(kinds) if k == "matmul")
    got = {"fwd": int(macs["fwd"].sum()),
           "bwd_input": int(macs["bwd_input"].sum()) + b_operand,
           "bwd_weight": int(macs["bwd_weight"].sum()) - b_operand + overcount}
    assert got == oracle_passes(module, in_shape)
    assert got["fwd"] > 0 and got["bwd_weight"] > 0


def test_torchvision_resnet_structure():
    """Reused ReLU: one layer per call; blocks found from the residual adds; shortcut roles."""
    w = e2sim.workload_from_torch(ResNet(BasicBlock, (2, 2, 2, 2), width=8), (3, 32, 32))
    names = [layer.name for layer in w.layers]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert names[4:12] == ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2",
                           "layer1.0.add", "layer1.0.relu#2", "layer1.1.conv1"]
    assert len(w.blocks) == 8 and sum(b.gated for b in w.blocks) == 7
    ds = w.layers[w.layer_index["layer2.0.downsample.0"]]
    assert ds.role == "shortcut" and ds.block == "layer2.0" and ds.stride == (2, 2)
    assert not w.layers[0].needs_input_grad and w.layers[1].needs_input_grad


def test_issue_patterns_exact():
    # A pooled input needs no gradient: no bwd_input for the conv (torch computes none).
    w = e2sim.workload_from_torch(nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(3, 16, 3, padding=1)), (3, 32, 32),
                                  batch_size=3)
    c = count(w)
    assert not w.layers[1].needs_input_grad and c.macs[1, P["bwd_input"]] == 0
    assert c.macs[1, P["fwd"]] == 3 * 16 * 16 * 16 * 27 == 331_776
    # Linear on the last dimension of a 4-D tensor: true in_features, 8 positions per sample.
    w = e2sim.workload_from_torch(nn.Sequential(nn.Conv2d(3, 8, (4, 3), padding=(0, 1)), nn.Linear(4, 1)),
                                  (3, 4, 4), batch_size=2)
    fc = w.layers[1]
    assert (fc.in_shape, fc.out_shape, fc.steps) == ((4, 1, 1), (1, 1, 1), 8)
    assert list(count(w).macs[1, :3]) == [64, 64, 64]
    # A shared module: the second call's weights belong to the first; gradients add up, one update.
    w = e2sim.workload_from_torch(Functional(), (3, 8, 8))
    second = w.layers[w.layer_index["shared#2"]]
    assert second.weights_from == "shared"
    c = count(w)
    i1, i2 = w.layer_index["shared"], w.layer_index["shared#2"]
    assert c.params[i2] == 0 and c.params[i1] == 8 * 8 * 9 + 8
    assert c.macs[i2, P["update"]] == 0 and c.elem_ops[i2, P["update"]] == 0 < c.elem_ops[i1, P["update"]]
    frozen = w.layer_index["frozen"]
    assert c.macs[frozen, P["bwd_weight"]] == 0 and c.macs[frozen, P["bwd_input"]] > 0
    assert c.elem_ops[frozen, P["update"]] == 0
    # cat of the network input before the first conv: no input gradient there.
    assert w.layers[0].in_shape == (6, 8, 8) and not w.layers[0].needs_input_grad


def test_recurrent_counts_per_step_by_hand():
    lstm = nn.LSTM(5, 7, batch_first=True)
    w = e2sim.workload_from_torch(nn.Sequential(nn.Conv2d(3, 5, 1), nn.Flatten(2)), (3, 1, 4))
    assert w.layers[0].out_shape == (5, 1, 4)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 5, 1)
            self.lstm = lstm

        def forward(self, x):
            y, _ = self.lstm(self.proj(x).flatten(2).transpose(1, 2))
            return y

    w = e2sim.workload_from_torch(Seq(), (3, 1, 4), batch_size=2)
    layer = w.layers[w.layer_index["lstm.l0"]]
    assert (layer.steps, layer.hidden, layer.state_needs_grad) == (4, 7, False)
    c = count(w)
    i = w.layer_index["lstm.l0"]
    per_step = 4 * 7 * (5 + 7)
    assert c.macs[i, P["fwd"]] == 2 * 4 * per_step
    assert c.macs[i, P["bwd_weight"]] == 2 * 4 * per_step
    # input part at all 4 steps, recurrent part at steps 2..4 (the zero initial state needs none)
    assert c.macs[i, P["bwd_input"]] == 2 * (4 * 28 * 5 + 3 * 28 * 7)


@pytest.mark.parametrize("module, shape, match", [
    (nn.Sequential(nn.Conv2d(3, 3, 3), nn.Upsample(scale_factor=2)), (3, 8, 8), r"node _1: cannot count module 1 "
                                                                                r"of type Upsample"),
    (nn.Sequential(nn.Conv2d(3, 4, 4, padding="same")), (3, 8, 8), "padding='same' with an even kernel"),
    (nn.Sequential(nn.Conv3d(3, 4, 1)), (3, 8, 8), "fails on input"),
])
def test_unsupported_is_one_line_error(module, shape, match):
    with pytest.raises(E2simError, match=match) as err:
        e2sim.workload_from_torch(module, shape)
    assert "\n" not in str(err.value)


def test_unknown_function_names_op_and_node():
    class Soft(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return torch.softmax(self.conv(x), 1)

    with pytest.raises(E2simError, match=r"node softmax: cannot count operation softmax") as err:
        e2sim.workload_from_torch(Soft(), (3, 4, 4))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("arch", ["unet", "dilated", "cnn_lstm", "functional", "efficientnet_se"])
def test_lowering_gemms_carry_the_counted_macs(arch):
    from dataclasses import replace

    import numpy as np

    from e2sim.lowering import geometry, lower
    from e2sim.plan import base_plan

    make, in_shape = ARCHS[arch]
    w = e2sim.workload_from_torch(make(), in_shape, batch_size=4)
    plan = base_plan(count(w), "int8")
    rng = np.random.default_rng(0)  # fractional samples, as selective layer update produces
    plan = replace(plan, samples=plan.samples * rng.uniform(0.2, 1.0, plan.n_items))
    g = lower(plan, geometry(w))
    np.testing.assert_allclose(np.bincount(g.item, g.macs, plan.n_items), plan.macs, rtol=1e-12)
    assert np.all(g.m > 0) and np.all(g.n >= 1) and np.all(g.k > 0)
    est = e2sim.estimate(w, "zedboard", "int8", iterations=1)
    assert est.energy_j > 0 and est.to_dict()["macs"] == pytest.approx(float(count(w).macs.sum()))


def test_lowering_new_layers_by_hand():
    import numpy as np

    from e2sim.lowering import geometry, lower
    from e2sim.plan import base_plan

    def gemms(w, layer, pass_):
        plan = base_plan(count(w, 2), "fp32")
        g = lower(plan, geometry(w))
        names = np.asarray(plan.counts.names)[plan.layer[g.item]]
        sel = np.nonzero((names == layer) & (plan.pass_[g.item] == P[pass_]))[0]
        return [(g.m[i], g.n[i], g.k[i], g.a_unique[i], g.count[i]) for i in sel]

    w = e2sim.workload_from_torch(DilatedNet(), (3, 24, 24))
    # 3x3 dilation 4 on 12x12 (padding 4): K = 16 * 9 taps; the windows span 9x9, so the padded input
    # they touch is (12 - 1) + 9 = 20 per side.
    assert gemms(w, "conv2", "fwd") == [(2 * 144, 16, 144, 2 * 16 * 20 * 20, 1)]
    # Transposed 4x4 stride 2, 16 -> 8 channels in 2 groups, 12x12 -> 24x24: the forward is the input-gradient
    # GEMM of the conv 24x24 -> 12x12: per group M = input pixels, N = 4 * 16 taps, K = 8 input channels.
    assert gemms(w, "up", "fwd") == [(2 * 144, 4 * 16, 8, 2 * 144 * 8, 2)]
    assert gemms(w, "up", "bwd_input") == [(2 * 144, 8, 4 * 16, 2 * 4 * 26 * 26, 2)]
    assert gemms(w, "up", "bwd_weight") == [(4 * 16, 8, 2 * 144, 2 * 4 * 26 * 26, 2)]
    w = e2sim.workload_from_torch(CNNLSTM(), (3, 16, 12))
    # GRU (input 24, hidden 10, 6 steps, zero initial state): the input gradient is two GEMMs, W_ih at all
    # 6 steps and W_hh at the last 5.
    assert gemms(w, "gru.l0", "bwd_input") == [(2 * 6, 24, 30, 2 * 6 * 30, 1), (2 * 5, 10, 30, 2 * 5 * 30, 1)]
    assert gemms(w, "gru.l0", "fwd") == [(2 * 6, 30, 34, 2 * 6 * 34, 1)]
    w = e2sim.workload_from_torch(Functional(), (3, 8, 8))
    # matmul (8 x 6) @ (6 x 8) per sample: two independent products at batch 2.
    assert gemms(w, "matmul", "fwd") == [(8, 8, 6, 48, 2)]
    assert gemms(w, "matmul", "bwd_weight") == [(6, 8, 8, 48, 2)]


def test_topology_rows_of_new_layers():
    from e2sim.topology import from_workload

    topo = from_workload(e2sim.workload_from_torch(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2), nn.Flatten(2), nn.Linear(64, 5)), (3, 8, 8)))
    # dilated 3x3 (d = 2): effective 5x5 on the padded 12x12 input; the linear layer at 4 positions.
    assert topo.to_csv().splitlines()[1:] == ["0,12,12,5,5,3,4,1,", "2,4,1,1,1,64,5,1,"]
    with pytest.raises(E2simError, match="conv_transpose layer has no SCALE-Sim topology row"):
        from_workload(e2sim.workload_from_torch(UNet(), (3, 16, 16)))


def test_wrong_channels_are_the_models_error():
    with pytest.raises(E2simError, match=r"Sequential fails on input \(3, 8, 8\)") as err:
        e2sim.workload_from_torch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(5, 4, 3)), (3, 8, 8))
    assert "\n" not in str(err.value)
