"""Gated ResNets (SLU), the SLU regulariser and the per-iteration schedule (SMD, lr)."""
import numpy as np
import pytest
import torch

from e2sim.techniques import add_gates
from e2sim.train import schedule
from e2sim.train.gated import GatedCifarResNet
from e2sim.train.models import CifarResNet
from e2sim.train.slu import executed_fraction, slu_regulariser
from e2sim.workload_files import load_workload


def _gated(seed=0, bias=None):
    torch.manual_seed(seed)
    m = GatedCifarResNet(20).eval()
    if bias is not None:
        with torch.no_grad():
            m.control.proj.weight.zero_()
            m.control.proj.bias.fill_(bias)
    return m


def test_module_names_are_workload_layer_names():
    w = add_gates(load_workload("resnet20_cifar10"))
    m = GatedCifarResNet(20)
    modules = dict(m.named_modules())
    for layer in w.layers:
        if layer.kind in ("conv", "batchnorm", "linear", "lstm") and layer.weights_from is None:
            assert layer.name in modules, layer.name
    assert m.gated_blocks == [b.name for b in w.gated_blocks]
    # the gates' convs carry the techniques stage's names (PSG statistics map onto them)
    assert [n for n, x in m.named_modules() if isinstance(x, torch.nn.Conv2d) and ".gate." in n] == \
        [L.name for L in w.layers if L.role == "gate" and L.kind == "conv"]


def test_all_gates_open_is_the_plain_resnet():
    m = _gated(bias=100.0)  # sigmoid = 1 > any uniform draw
    plain = CifarResNet(20).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if ".gate." not in k})
    x = torch.randn(4, 3, 32, 32)
    logits, masks, probs = m(x)
    assert all(bool((mk == 1).all()) for mk in masks) and len(masks) == 8
    torch.testing.assert_close(logits, plain(x), rtol=0, atol=1e-5)


def test_closed_gates_pass_the_shortcut_through():
    m = _gated(bias=-100.0)
    x = torch.randn(3, 3, 32, 32)
    logits, masks, _ = m(x)
    assert all(bool((mk == 0).all()) for mk in masks)
    with torch.no_grad():
        h = m.layer1[0](m.stem(x))  # the first block always runs
        for _, block in m.named_blocks()[1:]:
            h = block.shortcut(h)  # identity, or the 1x1 downsample (still runs when skipped)
        torch.testing.assert_close(logits, m.head(h), rtol=0, atol=1e-5)


def test_straight_through_gradient_reaches_the_shared_gate():
    m = _gated(seed=1).train()
    x = torch.randn(8, 3, 32, 32)
    logits, masks, probs = m(x)
    masks[0].sum().backward()
    # d(sum of the first gate's hard decisions)/d(proj.bias) = sum of sigmoid' over samples (straight-through)
    expect = float((probs[0] * (1 - probs[0])).detach().sum())
    assert m.control.proj.bias.grad.item() == pytest.approx(expect, rel=1e-5)
    assert m.layer1[1].gate.conv.weight.grad.abs().sum() > 0 and m.layer2[1].gate.conv.weight.grad is None


def test_slu_regulariser_sign_flips_at_the_target():
    masks = [torch.tensor([1.0, 0.0, 1.0, 1.0], requires_grad=True), torch.tensor([1.0, 1.0, 0.0, 0.0])]
    assert executed_fraction(masks) == pytest.approx(5 / 8)
    below = slu_regulariser(masks, target=0.7, beta=0.01)  # 5/8 <= 0.7: reward executing (reg = -1)
    above = slu_regulariser(masks, target=0.5, beta=0.01)  # 5/8 > 0.5: penalise executing (reg = +1)
    assert below.item() == pytest.approx(-0.05) and above.item() == pytest.approx(0.05)
    above.backward()
    assert masks[0].grad.tolist() == pytest.approx([0.01] * 4)


def test_smd_draws_are_seeded_per_iteration_and_match_the_rate():
    d = [schedule.smd_dropped(3, i, 0.5) for i in range(4000)]
    assert d == [schedule.smd_dropped(3, i, 0.5) for i in range(4000)]
    assert abs(np.mean(d) - 0.5) < 0.03  # 4000 Bernoulli(0.5): sd 0.008
    assert d != [schedule.smd_dropped(4, i, 0.5) for i in range(4000)]
    assert not any(schedule.smd_dropped(3, i, 0.0) for i in range(100))


def test_lr_schedule_and_scaled_milestones():
    ms = schedule.scaled_milestones((32000, 48000), 64000, 400)
    assert ms == (200, 300)
    assert [schedule.lr_at(i, 0.1, ms, 0.1) for i in (0, 199, 200, 299, 300)] == \
        pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
