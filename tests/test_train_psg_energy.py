"""PSG convolution in torch against the exact numba kernel and torch itself; the per-iteration energy
against the estimate pipeline."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from e2sim.estimate import estimate_plan
from e2sim.kernels.psg import psg_weight_grad, quantize_activation
from e2sim.techniques import PSG, SLU, build
from e2sim.train.energy import IterationEnergy
from e2sim.train import psg
from e2sim.train.models import build_model
from e2sim.train.psg import PsgConv2d, _quantized_weight, convert_to_psg
from e2sim.workload_files import load_workload


def _conv(stride, exact, signed=True, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Conv2d(6, 5, 3, stride, 1, bias=False))
    convert_to_psg(m, threshold=-0.05, exact=exact)  # relative threshold: a sizeable fallback set
    m[0].input_signed = signed
    return m


# the fast path's three ways to the fallback entries' full-precision sign, forced by its switch points
BRANCHES = {"dense": ({1: -1.0, 2: -1.0}, 0.0), "layout": ({1: 2.0, 2: 2.0}, -1.0),
            "direct": ({1: 2.0, 2: 2.0}, 2.0)}


@pytest.mark.parametrize("branch", sorted(BRANCHES))
@pytest.mark.parametrize("stride", [1, 2])
def test_psg_gradients_match_the_exact_kernel_and_torch(stride, branch, monkeypatch):
    monkeypatch.setattr(psg, "DENSE_ABOVE", BRANCHES[branch][0])
    monkeypatch.setattr(psg, "DIRECT_BELOW", BRANCHES[branch][1])
    g = torch.Generator().manual_seed(stride)
    x = torch.randn(4, 6, 9, 9, generator=g, requires_grad=True)
    fast, exact = _conv(stride, False), _conv(stride, True)
    up = torch.randn(4, 5, *fast(x).shape[2:], generator=g)
    (fast(x) * up).sum().backward()
    gx_fast = x.grad.clone()
    x.grad = None
    (exact(x) * up).sum().backward()
    w = fast[0].weight
    # the exact kernel's rule, called directly, is the oracle of both paths
    r = psg_weight_grad(x.detach().numpy(), up.numpy(), tuple(w.shape), stride=stride, padding=1,
                        threshold=-0.05, x_signed=True)
    assert 0 < r.fallback.mean() < 1
    np.testing.assert_array_equal(exact[0].weight.grad.numpy(), r.sign)
    np.testing.assert_array_equal(fast[0].weight.grad.numpy(), r.sign)
    assert fast[0].fallback_fraction == exact[0].fallback_fraction == r.fallback.mean()
    # input gradient: fp32 error through the 8-bit weights (straight-through input quantizer)
    wq = torch.from_numpy(_quantized_weight(w.detach().numpy()))
    xr = x.detach().clone().requires_grad_(True)
    (F.conv2d(xr, wq, stride=stride, padding=1) * up).sum().backward()
    torch.testing.assert_close(gx_fast, xr.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("branch", sorted(BRANCHES))
@pytest.mark.parametrize("k,stride,padding,groups,signed", [(3, 1, 1, 3, True), (1, 2, 0, 1, True),
                                                            (3, 2, 1, 1, False), (5, 1, 2, 1, False)])
def test_fast_psg_sign_is_the_exact_kernels_on_every_branch(k, stride, padding, groups, signed, branch,
                                                            monkeypatch):
    """Each fallback branch of the fast path against the exact kernel: the sign where the prediction is used,
    the full-precision sign where it falls back, and the fallback fraction train records."""
    monkeypatch.setattr(psg, "DENSE_ABOVE", BRANCHES[branch][0])
    monkeypatch.setattr(psg, "DIRECT_BELOW", BRANCHES[branch][1])
    torch.manual_seed(k + stride)
    m = torch.nn.Sequential(torch.nn.Conv2d(6, 6, k, stride, padding, groups=groups, bias=False))
    convert_to_psg(m, threshold=-0.1)
    m[0].input_signed = signed
    x = torch.randn(3, 6, 8, 8)
    x = (x if signed else x.relu()).requires_grad_(True)
    up = torch.randn_like(m(x))
    (m(x) * up).sum().backward()
    r = psg_weight_grad(x.detach().numpy(), up.numpy(), tuple(m[0].weight.shape), stride=stride, padding=padding,
                        groups=groups, threshold=-0.1, x_signed=signed)
    assert 0 < r.fallback.mean() < 1 and (r.sign[r.fallback] != 0).any()
    np.testing.assert_array_equal(m[0].weight.grad.numpy(), r.sign)
    assert m[0].fallback_fraction == r.fallback.mean()


def test_psg_forward_is_the_8bit_conv():
    m = _conv(1, False, signed=False)
    x = torch.rand(2, 6, 7, 7)
    codes, delta = quantize_activation(x.numpy(), 8, False)
    xq = torch.from_numpy(codes.astype(np.float32) * delta[0])
    wq = torch.from_numpy(_quantized_weight(m[0].weight.detach().numpy()))
    torch.testing.assert_close(m(x), F.conv2d(xq, wq, padding=1), rtol=0, atol=0)


def test_convert_keeps_names_and_marks_post_relu_inputs_unsigned():
    m = build_model("resnet20")
    keys = list(m.state_dict())
    names = convert_to_psg(m, threshold=5e-5)
    assert list(m.state_dict()) == keys
    assert len(names) == 21  # stem + 18 block convs + 2 downsample convs
    w = load_workload("resnet20_cifar10")
    assert names == [L.name for L in w.layers if L.kind == "conv"]
    mods = dict(m.named_modules())
    assert all(isinstance(mods[n], PsgConv2d) for n in names)
    assert not mods["layer1.0.conv2"].input_signed and mods["layer1.0.conv1"].input_signed
    assert mods["conv1"].input_signed and mods["layer2.0.downsample.0"].input_signed


W20 = load_workload("resnet20_cifar10")
BLOCKS = [b.name for b in W20.gated_blocks]


def test_iteration_energy_equals_the_estimate_where_it_is_exact():
    convs = [L.name for L in W20.layers if L.kind == "conv"] + [f"{b}.gate.conv" for b in BLOCKS]
    e = IterationEnergy(W20, "zedboard", 16, psg=True, gated_blocks=BLOCKS, psg_layers=convs)
    for keep, fallback in [(1.0, 0.0), (1.0, 1.0), (0.0, 0.25), (0.0, 1.0)]:
        w, plan = build(W20, [PSG(fallback=fallback), SLU(skip=1.0 - keep)], "fp32", iterations=1, batch_size=16)
        ref = estimate_plan(plan, w, "zedboard").energy_j
        got = e(np.full(len(BLOCKS), keep), np.full(len(convs), fallback))
        assert got == pytest.approx(ref, rel=1e-12)
    # between the corners: within 2% of the estimate at batch 16 (measured 1.2%: the tiling ceil is interpolated)
    w, plan = build(W20, [PSG(fallback=0.3), SLU(skip=0.5)], "fp32", iterations=1, batch_size=16)
    assert e(np.full(len(BLOCKS), 0.5), np.full(len(convs), 0.3)) == \
        pytest.approx(estimate_plan(plan, w, "zedboard").energy_j, rel=0.02)
    # per block: executing only layer3.2 costs more than executing nothing, less than everything
    only = np.zeros(len(BLOCKS))
    only[-1] = 1.0
    assert e(np.zeros(len(BLOCKS)), None) < e(only, None) < e(np.ones(len(BLOCKS)), None)


def test_plain_iteration_energy_is_the_fp32_estimate():
    e = IterationEnergy(W20, "zedboard", 16, psg=False, gated_blocks=[])
    _, plan = build(W20, [], "fp32", iterations=1, batch_size=16)
    assert e() == pytest.approx(estimate_plan(plan, W20, "zedboard").energy_j, rel=1e-12)
