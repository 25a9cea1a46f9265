"""ONNX import (optional 'onnx' extra): a model exported from torch imports to the torch import's counts."""
from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402

import e2sim  # noqa: E402
from e2sim.errors import E2simError  # noqa: E402
from e2sim.from_onnx import workload_from_onnx  # noqa: E402
from test_from_torch import ARCHS  # noqa: E402


def export(module, in_shape, path):
    import warnings

    module.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # TRAINING keeps the batchnorms (eval mode folds them into the convs); the TorchScript exporter
        # (dynamo=False) needs no onnxscript.
        torch.onnx.export(module, (torch.zeros(2, *in_shape),), str(path), dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "squeezenet", "unet", "dilated", "cnn_lstm"])
def test_exported_model_counts_equal_torch_import(arch, tmp_path):
    make, in_shape = ARCHS[arch]
    torch.manual_seed(0)
    module = make()
    ref = e2sim.count(e2sim.workload_from_torch(module, in_shape, batch_size=4))
    w = workload_from_onnx(export(module, in_shape, tmp_path / "m.onnx"), batch_size=4)
    c = e2sim.count(w)
    assert (c.macs.sum(0) == ref.macs.sum(0)).all()  # per pass
    assert (c.elem_ops.sum(0) == ref.elem_ops.sum(0)).all()
    assert c.params.sum() == ref.params.sum()
    assert sorted(c.kinds) == sorted(ref.kinds)


@pytest.mark.slow
def test_cli_import_writes_a_workload(tmp_path):
    make, in_shape = ARCHS["resnet18"]
    module = make()
    path = export(module, in_shape, tmp_path / "r18.onnx")
    out = tmp_path / "r18.yaml"
    r = subprocess.run([sys.executable, "-m", "e2sim", "import", str(path), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    w = e2sim.load_workload(out)
    ref = e2sim.workload_from_torch(module, in_shape)
    assert w.forward_macs_per_sample() == ref.forward_macs_per_sample()
    assert [b.name for b in w.blocks] == [b.name for b in ref.blocks] and len(w.blocks) == 8
    assert (e2sim.count(w).macs.sum(0) == e2sim.count(ref).macs.sum(0)).all()
    bad = tmp_path / "bad.onnx"
    bad.write_text("not onnx")
    r = subprocess.run([sys.executable, "-m", "e2sim", "import", str(bad), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.onnx" in r.stderr


def test_unsupported_operator_is_one_line(tmp_path):
    path = export(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Softmax(1)), (3, 4, 4), tmp_path / "s.onnx")
    with pytest.raises(E2simError, match=r"node /1/Softmax: cannot count operator Softmax") as err:
        workload_from_onnx(path)
    assert "\n" not in str(err.value)
