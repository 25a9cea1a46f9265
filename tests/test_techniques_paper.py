"""The paper-check script renders REPRODUCTION.md as committed, and its tables hold hand-checkable facts."""
import io

import pytest

from validation.reproduce_paper import main


def _rows(text: str, header: str) -> list[list[str]]:
    block = text.split(header, 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]


@pytest.mark.slow
def test_reproduce_paper_matches_reproduction_md():
    buf = io.StringIO()
    main(buf)
    text = buf.getvalue()
    assert text == open("validation/REPRODUCTION.md").read()
    assert "SLU gates 41,150 MACs/image = 0.0245%" in text
    rows = {r[0]: r for r in _rows(text, "precision **fp32**, baseline **fp32**")}
    # SMD at 0.5 executes half the iterations: half the energy and time, a saving of exactly 50%.
    assert abs(float(rows["SMD"][1]) * 2 - float(rows["baseline:fp32"][1])) <= 0.0011  # 3-decimal rounding
    assert rows["SMD"][4] == "50.0%" and rows["SMD"][5] == "50.0%-50.0%"
    for r in rows.values():  # band around every value
        lo, hi = map(float, r[2].split("-"))
        assert lo <= float(r[1]) <= hi
        s_lo, s_hi = (float(x.rstrip("%")) for x in r[5].split("%-"))
        assert s_lo <= float(r[4].rstrip("%")) <= s_hi
