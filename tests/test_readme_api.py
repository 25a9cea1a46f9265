"""README's "Python API" example runs as written (so it cannot rot), and the values it prints agree with the
CLI's and with each other."""
import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def api_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.mark.slow
def test_readme_python_api_example_runs():
    ns: dict = {}
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile(api_example(), "README.md (Python API)", "exec"), ns)  # noqa: S102 - our own README
    text = out.getvalue()
    assert "kWh" in text and "%" in text and "per-item rows" not in text  # the summary, without CLI hints
    est, tiny, sv, rows = ns["est"], ns["tiny"], ns["sv"], ns["rows"]
    assert est.plan.precision == "int8" and est.energy_j == pytest.approx(sum(est.breakdown_j.values()), rel=1e-12)
    assert len(ns["work"].layers) == 8 and tiny.iterations == 1000 and tiny.energy_j > 0
    # techniques as objects: the same energy through estimate, estimate_with_savings and compare
    assert ns["with_all"].energy_j == pytest.approx(sv.config.energy_j, rel=1e-12)
    assert rows.set_index("config").loc["SMD+SLU+PSG", "energy_j"] == pytest.approx(sv.config.energy_j, rel=1e-12)
    assert sv.baseline_name == "fp32" and 0 < sv.saving < 1


def test_techniques_as_objects_and_bad_ones():
    import e2sim

    a = e2sim.estimate("resnet20_cifar10", techniques=[e2sim.SMD(0.5)], iterations=10)
    b = e2sim.estimate("resnet20_cifar10", techniques=e2sim.Techniques(smd=e2sim.SMD(0.5)), iterations=10)
    assert a.energy_j == b.energy_j == pytest.approx(0.5 * e2sim.estimate("resnet20_cifar10", iterations=10).energy_j)
    with pytest.raises(e2sim.E2simError, match="SMD given twice"):
        e2sim.estimate("resnet20_cifar10", techniques=[e2sim.SMD(0.5), e2sim.SMD(0.1)])
    with pytest.raises(e2sim.E2simError, match="expected SMD, SLU or PSG"):
        e2sim.estimate("resnet20_cifar10", techniques=["smd"])
