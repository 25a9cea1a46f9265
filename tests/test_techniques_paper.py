"""The paper-check script runs and its table states the figures REPRODUCTION.md quotes."""
import io

from validation.reproduce_paper import main


def test_reproduce_paper_table_matches_reproduction_md():
    buf = io.StringIO()
    main(buf)
    text = buf.getvalue()
    assert "SLU gates 41,150 MACs/image = 0.0245%" in text
    assert "| SMD | 2.043 | 261 | 50.0% |" in text
    doc = open("validation/REPRODUCTION.md").read()
    for line in text.splitlines():
        if line.startswith("|"):
            assert line in doc, line
