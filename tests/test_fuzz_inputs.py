"""Fuzzing the CLI's input surfaces (issue 15): generated workload and profile YAML, CLI options, topology
CSV, power logs, calibrate sidecars, stats files and checkpoints. Every case must end in exit 2 with one
``e2sim: error:`` line, or exit 0 with finite, non-negative results (tests/fuzzing.py holds the harness)."""
from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import strategies as st

from e2sim.workload_files import WORKLOAD_DIR

from fuzzing import check, fresh_dir, fuzz_surface, invoke, json_ok, write_text, yaml_documents

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_WORKLOAD = yaml.safe_load((WORKLOAD_DIR / "resnet20_cifar10.yaml").read_text())
CUSTOM_WORKLOAD = {
    "schema_version": 1, "name": "tiny", "model": "custom",
    "dataset": {"name": "tiny", "classes": 4, "train_images": 100, "test_images": 20, "image_shape": [3, 8, 8]},
    "batch_size": 8,
    "schedule": {"iterations": 100, "lr": 0.1, "lr_milestones": [50], "lr_decay": 0.1, "momentum": 0.9,
                 "weight_decay": 0.0001},
    "layers": [
        {"name": "conv1", "kind": "conv", "in_shape": [3, 8, 8], "out_shape": [4, 8, 8], "kernel": [3, 3],
         "padding": [1, 1], "needs_input_grad": False, "role": "stem"},
        {"name": "relu", "kind": "relu", "in_shape": [4, 8, 8], "out_shape": [4, 8, 8], "role": "stem"},
        {"name": "pool", "kind": "avgpool", "in_shape": [4, 8, 8], "out_shape": [4, 1, 1], "kernel": [8, 8],
         "stride": [8, 8], "role": "head"},
        {"name": "fc", "kind": "linear", "in_shape": [4, 1, 1], "out_shape": [4, 1, 1], "bias": True,
         "role": "head"},
    ],
}
ESTIMATE_JSON = json_ok()


@fuzz_surface(st.data())
def workload_yaml(tmp_path_factory, data):
    base = data.draw(st.sampled_from([BUNDLED_WORKLOAD, CUSTOM_WORKLOAD]))
    path = write_text(fresh_dir(tmp_path_factory, "w"), "w.yaml", data.draw(yaml_documents(base)))
    if base is CUSTOM_WORKLOAD and data.draw(st.booleans()):
        check(invoke(["counts", "--workload", path, "--format", "json"]), json_ok())
    else:
        check(invoke(["estimate", "--workload", path, "--format", "json"]), ESTIMATE_JSON)
