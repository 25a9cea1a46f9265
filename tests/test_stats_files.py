"""PSG / SLU statistics files: round trip and strict errors naming file and key path."""
from __future__ import annotations

import pytest

from e2sim.errors import E2simError
from e2sim.stats import PsgSettings, PsgStats, SluStats, dump_stats, load_psg_stats, load_slu_stats

SETTINGS = PsgSettings(bits=8, msb_bits=4, grad_msb_bits=16, threshold=5e-5, steps=4, sample_every=2,
                       batch_size=8, data="digits", seed=0)


def test_round_trip(tmp_path):
    s = PsgStats(workload="resnet20_cifar10", settings=SETTINGS, fallback_fraction={"conv1": 0.25, "fc1": 0.0})
    p = tmp_path / "psg.yaml"
    p.write_text(dump_stats(s))
    assert load_psg_stats(p) == s
    slu = SluStats(workload="resnet74_cifar10", skip_ratio={"layer1.1": 0.4})
    q = tmp_path / "slu.json"
    q.write_text('{"schema_version": 1, "kind": "slu", "workload": "resnet74_cifar10", "skip_ratio": {"layer1.1": 0.4}}')
    assert load_slu_stats(q) == slu


@pytest.mark.parametrize("text,match", [
    ("schema_version: 2\nkind: psg\nworkload: w\nsettings: {}\nfallback_fraction: {}\n", "schema_version"),
    ("kind: slu\nworkload: w\nskip_ratio: {}\n", "kind"),
    ("workload: w\nsettings: {bits: 8, msb_bits: 4, grad_msb_bits: 16, threshold: 0.0, steps: 1, sample_every: 1,"
     " batch_size: 1, data: d, seed: 0}\nfallback_fraction: {conv1: 1.5}\n", r"fallback_fraction\.conv1"),
    ("workload: w\nsettings: {bits: 8, msb_bits: 4, grad_msb_bits: 16, threshold: 0.0, steps: 1, sample_every: 1,"
     " batch_size: 1, data: d, seed: 0}\nfallback_fraction: {}\nbogus: 1\n", "bogus: unknown key"),
])
def test_errors_name_file_and_key(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(E2simError, match=match) as err:
        load_psg_stats(p)
    assert "bad.yaml" in str(err.value)
