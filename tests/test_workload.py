"""Workload files: bundled ones load; malformed ones are rejected with the key named; CLI errors exit 2."""
import json
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import e2sim
from e2sim.errors import E2simError
from e2sim.workload_files import bundled_workloads

CUSTOM = {
    "schema_version": 1,
    "name": "tiny",
    "model": "custom",
    "dataset": {"name": "toy", "classes": 4, "train_images": 100, "test_images": 10, "image_shape": [3, 8, 8]},
    "batch_size": 4,
    "blocks": [{"name": "b0", "stage": 1, "gated": False}],
    "layers": [
        {"name": "conv", "kind": "conv", "in_shape": [3, 8, 8], "out_shape": [6, 8, 8], "kernel": [3, 3],
         "padding": [1, 1], "needs_input_grad": False, "role": "stem"},
        {"name": "b0.conv", "kind": "conv", "in_shape": [6, 8, 8], "out_shape": [6, 8, 8], "block": "b0"},
        {"name": "b0.add", "kind": "add", "in_shape": [6, 8, 8], "out_shape": [6, 8, 8], "block": "b0",
         "n_inputs": 2},
        {"name": "fc", "kind": "linear", "in_shape": [384, 1, 1], "out_shape": [4, 1, 1], "bias": True,
         "role": "head"},
    ],
}


def write(tmp_path, data, name="w.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_bundled_workloads_load():
    names = set(bundled_workloads())
    assert {"resnet20_cifar10", "resnet38_cifar10", "resnet74_cifar10", "resnet110_cifar10",
            "resnet110_cifar100", "mobilenetv2_cifar10"} <= names
    w = e2sim.load_workload("resnet74_cifar10")
    assert w.batch_size == 128 and w.schedule.iterations == 64_000 and w.dataset.train_images == 50_000
    assert len(w.blocks) == 36 and len(w.gated_blocks) == 35  # E2-Train: the first block always runs
    assert len(e2sim.load_workload("resnet110_cifar100").gated_blocks) == 53
    assert e2sim.load_workload("resnet110_cifar100").layers[-1].out_shape == (100, 1, 1)


def test_custom_workload_counts_by_hand(tmp_path):
    w = e2sim.load_workload(write(tmp_path, CUSTOM))
    c = e2sim.count(w)
    # conv: 6 x 8 x 8 outputs x 27 MACs, batch 4; no bwd_input (network input).
    assert list(c.macs[0]) == [4 * 6 * 64 * 27, 0, 4 * 6 * 64 * 27, 0]
    assert c.macs[1, 1] == 4 * 6 * 64 * 6  # 1x1 conv, 6 -> 6 channels
    # fc with bias: 384 x 4 MACs per sample; update: 3 ops per parameter (SGD momentum + weight decay).
    assert c.macs[3, 0] == 4 * 384 * 4 and c.elem_ops[3, 3] == 3 * (384 * 4 + 4)
    # residual add reads both inputs, writes one output; backward delivers the gradient to both.
    df = c.to_frame().set_index(["layer", "pass"])
    assert df.loc[("b0.add", "fwd"), "input_read_elems"] == 4 * 2 * 384
    assert df.loc[("b0.add", "bwd_input"), "grad_input_write_elems"] == 4 * 2 * 384


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d["layers"][1].update(out_shape=[-6, 8, 8]), "layers.1.out_shape.0"),
    (lambda d: d["layers"][1].update(out_shape=[6, 8, 2**21]), "layers.1.out_shape.2"),
    (lambda d: d["layers"][1].update(groups=1e300), "layers.1.groups"),
    (lambda d: d["layers"][1].pop("kind"), "layers.1.kind"),
    (lambda d: d.update(batch_size="many"), "batch_size"),
    (lambda d: d["layers"][0].update(stride="two"), "layers.0.stride"),
    (lambda d: d["layers"][2].update(unknown_field=1), "layers.2.unknown_field"),
    (lambda d: d.pop("name"), "name"),
    (lambda d: d["layers"][1].update(block="nope"), "layers.1.block"),
])
def test_malformed_rejected_with_key(tmp_path, mutate, key):
    data = json.loads(json.dumps(CUSTOM))
    mutate(data)
    with pytest.raises(E2simError) as err:
        e2sim.load_workload(write(tmp_path, data))
    assert key in str(err.value) and "w.yaml" in str(err.value)


def test_inconsistent_shapes_rejected(tmp_path):
    data = json.loads(json.dumps(CUSTOM))
    data["layers"][1]["out_shape"] = [6, 7, 8]
    with pytest.raises(E2simError, match="layers.1"):
        e2sim.load_workload(write(tmp_path, data))


def test_duplicate_yaml_key(tmp_path):
    with pytest.raises(E2simError, match="duplicate key 'name'"):
        e2sim.load_workload(write(tmp_path, "name: a\nname: b\nmodel: resnet20\n"))


_scalar = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer=st.integers(0, 3), field=st.sampled_from(["in_shape", "out_shape", "kernel", "stride", "groups",
                                                        "kind", "name", "padding", "n_inputs"]), value=_scalar)
def test_property_corrupt_layer_field(tmp_path, layer, field, value):
    """Any corrupted field either still gives a valid workload or a one-line error naming the layer."""
    data = json.loads(json.dumps(CUSTOM))
    data["layers"][layer][field] = value
    try:
        w = e2sim.load_workload(write(tmp_path, data))
    except E2simError as exc:
        msg = str(exc)
        assert "\n" not in msg and (f"layers.{layer}" in msg or "layers" in msg or "duplicate" in msg)
    else:
        c = e2sim.count(w)
        assert (c.macs >= 0).all() and (c.reads >= 0).all()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "e2sim", *args], capture_output=True, text=True, timeout=120)


def test_cli_counts_csv_and_errors(tmp_path):
    r = run_cli("counts", "--workload", "resnet20_cifar10", "--format", "csv")
    assert r.returncode == 0, r.stderr
    header, first = r.stdout.splitlines()[:2]
    assert header.startswith("layer,kind,block,role,pass,macs,elem_ops,input_read_elems")
    assert first.startswith("conv1,conv,,stem,fwd,56623104,")  # 128 x 16 x 32 x 32 x 27
    bad = run_cli("counts", "--workload", "resnet21_cifar10")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "resnet21_cifar10" in bad.stderr
    data = json.loads(json.dumps(CUSTOM))
    data["layers"][0]["channels"] = 3
    r = run_cli("counts", "--workload", str(write(tmp_path, data)))
    assert r.returncode == 2 and "layers.0.channels: unknown key" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("counts", "--workload", "resnet20_cifar10", "--format", "xml")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_cli_workloads_json():
    r = run_cli("workloads", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["workload"]: row for row in json.loads(r.stdout)}
    assert rows["resnet74_cifar10"]["fwd_macs_per_sample"] == 168_215_168
    assert rows["resnet74_cifar10"]["gated_blocks"] == 35


def test_workload_types_import_neither_builders_nor_counts():
    """One-way flow: workload (types) <- builders <- workload_files; the counter sits downstream."""
    code = ("import sys, e2sim.workload; "
            "print(sorted(m for m in sys.modules if m in ('e2sim.builders', 'e2sim.counts', 'e2sim.workload_files')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert e2sim.load_workload("resnet20_cifar10").forward_macs_per_sample() == int(
        e2sim.count(e2sim.load_workload("resnet20_cifar10"), batch_size=1).macs[:, 0].sum())


def test_new_layer_kinds_in_yaml_by_hand(tmp_path):
    """Dilated conv, transposed conv, a GRU over 6 steps and a matmul between activations, written by hand."""
    data = json.loads(json.dumps(CUSTOM))
    data["blocks"] = []
    data["layers"] = [
        {"name": "dil", "kind": "conv", "in_shape": [3, 8, 8], "out_shape": [4, 8, 8], "kernel": [3, 3],
         "padding": [2, 2], "dilation": [2, 2], "needs_input_grad": False, "role": "stem"},
        {"name": "up", "kind": "conv_transpose", "in_shape": [4, 8, 8], "out_shape": [2, 16, 16], "kernel": [3, 3],
         "stride": [2, 2], "padding": [1, 1], "output_padding": [1, 1], "role": "stem"},
        {"name": "gru", "kind": "gru", "in_shape": [32, 1, 1], "out_shape": [5, 1, 1], "hidden": 5, "steps": 16,
         "state_needs_grad": False, "role": "head"},
        {"name": "att", "kind": "matmul", "in_shape": [1, 16, 5], "out_shape": [1, 16, 16], "role": "head"},
    ]
    w = e2sim.load_workload(write(tmp_path, data))
    c = e2sim.count(w, batch_size=1)
    assert list(c.macs[0, :3]) == [4 * 64 * 27, 0, 4 * 64 * 27]  # dilation changes no MAC
    assert list(c.macs[1, :3]) == [4 * 64 * 2 * 9] * 3  # every input pixel scatters a 3x3 x 2 window
    gru = 3 * 5 * (32 + 5)
    assert list(c.macs[2, :3]) == [16 * gru, 3 * 5 * (16 * 32 + 15 * 5), 16 * gru]
    assert list(c.macs[3, :3]) == [16 * 5 * 16] * 3 and c.params[3] == 0 and c.elem_ops[3, 3] == 0
    data["layers"][1]["output_padding"] = [0, 0]
    with pytest.raises(E2simError, match=r"layers.1.*expected 15x15"):
        e2sim.load_workload(write(tmp_path, data))
