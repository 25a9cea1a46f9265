"""Counts against independent oracles: torch's FlopCounterMode (FLOPs = 2 x MACs) and hand derivations."""
import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import e2sim  # noqa: E402
from e2sim.counts import P, count  # noqa: E402
from e2sim.train.models import build_model  # noqa: E402

BATCH = 2


def _flop_macs(module, x, input_grad: bool, weight_grad: bool) -> tuple[int, int]:
    """(forward MACs, backward MACs) of one module under FlopCounterMode for a requires_grad setting."""
    for p in module.parameters():
        p.requires_grad_(weight_grad)
    x = x.detach().requires_grad_(input_grad)
    with FlopCounterMode(display=False) as fc:
        out = module(x)
        fwd = fc.get_total_flops()
        if input_grad or weight_grad:
            out.sum().backward()
    return fwd // 2, (fc.get_total_flops() - fwd) // 2


def _oracle(module, in_shape):
    """Per-pass MACs of one layer: forward; dX alone (weight frozen); dW alone (input needs no grad)."""
    x = torch.randn(BATCH, *in_shape) if isinstance(module, torch.nn.Conv2d) else torch.randn(BATCH, in_shape[0])
    fwd, bwd_input = _flop_macs(module, x, input_grad=True, weight_grad=False)
    fwd2, bwd_weight = _flop_macs(module, x, input_grad=False, weight_grad=True)
    assert fwd == fwd2
    return fwd, bwd_input, bwd_weight


@pytest.mark.parametrize("model", ["resnet20", "resnet74", "resnet110", "mobilenetv2"])
def test_macs_equal_flopcountermode(model):
    w = e2sim.load_workload(f"{model}_cifar10")
    c = count(w, batch_size=BATCH)
    module = build_model(model, 10)
    mods = dict(module.named_modules())
    checked = 0
    for i, layer in enumerate(w.layers):
        if layer.kind not in ("conv", "linear"):
            continue
        f, bi, bw = (int(c.macs[i, P[p]]) for p in ("fwd", "bwd_input", "bwd_weight"))
        of, obi, obw = _oracle(mods[layer.name], layer.in_shape)
        assert f == of, layer.name
        # The first layer's input needs no gradient in training: e2sim has no bwd_input there.
        assert bi == (obi if layer.needs_input_grad else 0), layer.name
        if layer.groups == 1:
            assert bw == obw, layer.name
        else:
            # FlopCounterMode overcounts a grouped conv's weight gradient by `groups` (pytorch#183405);
            # e2sim's value is the hand-derived one: B * Cout * Ho * Wo * (Cin/groups) * kh * kw.
            cout, ho, wo = layer.out_shape
            hand = BATCH * cout * ho * wo * (layer.in_shape[0] // layer.groups) * 9
            assert bw == hand
            assert obw in (hand, hand * layer.groups)
        checked += 1
    assert checked == sum(layer.kind in ("conv", "linear") for layer in w.layers) > 0


def test_depthwise_hand_derived():
    w = e2sim.load_workload("mobilenetv2_cifar10")
    c = count(w, batch_size=8)
    i = w.layer_index["layers.1.conv2"]  # depthwise 3x3 on 96 channels at 32x32 (expansion 6 of 16)
    layer = w.layers[i]
    assert layer.groups == 96 and layer.in_shape == (96, 32, 32)
    assert c.macs[i, P["fwd"]] == 8 * 96 * 32 * 32 * 9 == 7_077_888
    assert c.macs[i, P["bwd_weight"]] == 7_077_888
    assert c.macs[i, P["bwd_input"]] == 7_077_888


class _Toy(torch.nn.Module):
    """A CNN that is not bundled: stride-2 first conv with bias, max-pool, a 5x5 grouped conv, residual, 2 FCs."""

    def __init__(self):
        super().__init__()
        self.conv_a = torch.nn.Conv2d(3, 12, 3, stride=2, padding=1, bias=True)
        self.act = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.body = _ToyBlock()
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.flat = torch.nn.Flatten()
        self.fc1 = torch.nn.Linear(12, 20)
        self.fc2 = torch.nn.Linear(20, 7, bias=False)

    def forward(self, x):
        x = self.body(self.pool(self.act(self.conv_a(x))))
        return self.fc2(torch.relu(self.fc1(self.flat(self.gap(x)))))


class _ToyBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(12, 12, 5, padding=2, groups=3, bias=False)
        self.bn = torch.nn.BatchNorm2d(12)

    def forward(self, x):
        return x + self.bn(self.conv(x))


def test_workload_from_torch_matches_oracle():
    module = _Toy()
    w = e2sim.workload_from_torch(module, (3, 40, 24), name="toy", batch_size=BATCH)
    names = [layer.name for layer in w.layers]
    assert names == ["conv_a", "act", "pool", "body.conv", "body.bn", "body.add", "gap", "fc1", "relu", "fc2"]
    assert [b.name for b in w.blocks] == ["body"] and w.layers[3].block == "body"
    c = count(w)
    for p in module.parameters():
        p.requires_grad_(True)
    x = torch.randn(BATCH, 3, 40, 24)
    with FlopCounterMode(display=False) as fc:
        module(x).sum().backward()
    total = fc.get_total_flops() // 2
    grouped = w.layer_index["body.conv"]
    overcount = (w.layers[grouped].groups - 1) * int(c.macs[grouped, P["bwd_weight"]])
    assert int(c.macs.sum()) == total - overcount
    # conv_a: 12 x 20 x 12 output, 3x3x3 window.
    assert c.macs[0, P["fwd"]] == BATCH * 12 * 20 * 12 * 27
    assert c.macs[0, P["bwd_input"]] == 0


def test_resnet_forward_macs_follow_from_shapes():
    """ResNet-74: 168.2 M forward MACs per 32x32 image; ResNet-110: 253.1 M (the official architecture)."""

    def resnet_macs(n):
        conv1 = 16 * 32 * 32 * 3 * 9
        per_stage_conv = lambda c, hw: c * hw * hw * c * 9  # noqa: E731  a 3x3 conv keeping c channels
        stage1 = 2 * n * per_stage_conv(16, 32)
        # Stages 2 and 3: the first conv halves the map and doubles the channels, plus a 1x1 projection.
        stage2 = (2 * n - 1) * per_stage_conv(32, 16) + 32 * 16 * 16 * 16 * 9 + 32 * 16 * 16 * 16
        stage3 = (2 * n - 1) * per_stage_conv(64, 8) + 64 * 8 * 8 * 32 * 9 + 64 * 8 * 8 * 32
        fc = 64 * 10
        return conv1 + stage1 + stage2 + stage3 + fc

    w74, w110 = e2sim.load_workload("resnet74_cifar10"), e2sim.load_workload("resnet110_cifar10")
    assert w74.forward_macs_per_sample() == resnet_macs(12) == 168_215_168
    assert w110.forward_macs_per_sample() == resnet_macs(18) == 253_149_824
    assert round(resnet_macs(12) / 1e6, 1) == 168.2 and round(resnet_macs(18) / 1e6, 1) == 253.1
