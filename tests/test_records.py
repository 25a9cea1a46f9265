"""Records (e2sim/records.py): stdlib dataclasses that pydantic validates with the constraints of their
annotations, forbidding unknown keys and running their cross-field checks; to_plain's JSON form."""
from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
from pydantic import ValidationError

from e2sim.config import format_validation_error, validate
from e2sim.errors import E2simError
from e2sim.profile import load_profile
from e2sim.records import to_plain, validated
from e2sim.workload import Layer, Schedule, Workload, WorkloadFile
from e2sim.workload_files import load_workload

CONV = {"name": "c", "kind": "conv", "in_shape": [3, 8, 8], "out_shape": [4, 8, 8], "kernel": [3, 3],
        "padding": [1, 1], "role": "stem"}


def _msg(cls, data) -> str:
    with pytest.raises(ValidationError) as exc:
        validated(cls, data)
    return format_validation_error(exc.value, data)


def test_validation_coerces_lists_to_tuples_and_keeps_defaults():
    layer = validated(Layer, CONV)
    assert layer.in_shape == (3, 8, 8) and layer.kernel == (3, 3) and layer.stride == (1, 1)
    assert layer.fwd_macs == 4 * 8 * 8 * 3 * 9


@pytest.mark.parametrize("key, value, expected", [
    ("in_shape", [3, 0, 8], "in_shape.1: Input should be greater than or equal to 1"),
    ("in_shape", [3, 2**20 + 1, 8], "in_shape.1: Input should be less than or equal to 1048576"),
    ("groups", True, "groups: Input should be a valid integer"),  # strict: a YAML `true` is no int
    ("groups", "2", "groups: Input should be a valid integer"),
    ("name", "", "name: String should have at least 1 character"),
    ("colour", 1, "colour: unknown key"),
])
def test_field_constraints_strictness_and_unknown_keys(key, value, expected):
    assert _msg(Layer, {**CONV, key: value}) == expected


def test_missing_key_and_cross_field_check():
    data = {k: v for k, v in CONV.items() if k != "out_shape"}
    assert _msg(Layer, data) == "out_shape: missing required key"
    assert "does not follow from in 8x8" in _msg(Layer, {**CONV, "out_shape": [4, 9, 9]})
    with pytest.raises(ValueError, match="does not follow"):  # direct construction runs the same check
        Layer(name="c", kind="conv", in_shape=(3, 8, 8), out_shape=(4, 9, 9), kernel=(3, 3), padding=(1, 1),
              role="stem")


def test_real_fields_take_yaml12_exponents_and_refuse_non_finite():
    assert validated(Schedule, {"lr": "1e-2", "weight_decay": "5e-4"}) == Schedule(lr=0.01, weight_decay=5e-4)
    assert _msg(Schedule, {"lr": float("inf")}).startswith("lr: Input should be a finite number")
    assert _msg(Schedule, {"lr": "0x10"}) == "lr: Input should be a valid number"
    assert _msg(Schedule, {"lr": 20.0}) == "lr: Input should be less than or equal to 10"
    assert _msg(Schedule, {"lr_milestones": [5, 3]}) == "lr_milestones [5, 3] must be strictly increasing"


def test_union_error_names_the_member_field():
    data = {"name": "w", "model": "resnet20", "dataset": {"name": "d", "classes": 0, "train_images": 1,
                                                           "test_images": 1, "image_shape": [3, 32, 32]}}
    expected = r"^w.yaml: dataset.classes: Input should be greater than or equal to 1$"  # not "dataset: no str"
    with pytest.raises(E2simError, match=expected):
        validate(WorkloadFile, data, "w.yaml")
    data["dataset"]["test_images"] = 0
    data["batch_size"] = 0  # two more problems elsewhere
    with pytest.raises(E2simError, match=r"dataset.classes: .* \(and 2 more errors\)$"):
        validate(WorkloadFile, data, "w.yaml")


def test_records_are_frozen_hashable_and_pickle_to_equal_values():
    w = load_workload("resnet20_cifar10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.layers[0].name = "x"  # type: ignore[misc]
    assert hash(w.layers[0]) == hash(dataclasses.replace(w.layers[0]))
    assert pickle.loads(pickle.dumps(w)) == w
    p = load_profile("zedboard")
    assert pickle.loads(pickle.dumps(p)) == p


def test_to_plain_is_json_and_round_trips_through_validation():
    w = load_workload("resnet20_cifar10")
    plain = to_plain(w)
    json.dumps(plain)
    assert validated(Workload, plain) == w
    p = load_profile("zedboard")
    assert validated(type(p), json.loads(json.dumps(to_plain(p)))) == p
    short = to_plain(w.layers[0], exclude_defaults=True)
    assert "stride" not in short and validated(Layer, short) == w.layers[0]


def test_record_init_defaults_errors_and_repr():
    s = Schedule(iterations=10, lr_milestones=())
    assert (s.lr, s.momentum, s.lr_milestones) == (0.1, 0.9, ())
    assert Schedule(10, 0.1, ()) == s  # positional in field order, like a dataclass
    assert repr(s).startswith("Schedule(iterations=10, lr=0.1, lr_milestones=()")
    assert WorkloadFile(name="w", model="m").schedule == Schedule()  # default factory
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Schedule(colour=1)
    with pytest.raises(TypeError, match="missing required argument: 'model'"):
        WorkloadFile(name="w")
    with pytest.raises(TypeError, match="multiple values"):
        Schedule(10, iterations=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.lr
