"""Fuzzing the published-designs CSV surface (issue 11): ``e2sim validate --published --rows FILE.csv``.
Generated rows (valid ones mutated: nasty cell values, a column dropped, renamed or added, a row duplicated,
raw text damage) must end in exit 2 with one ``e2sim: error:`` line naming the file, or exit 0 with one JSON
object whose numbers are finite (harness: tests/fuzzing.py)."""
from __future__ import annotations

import csv
import io
import json
import math

from hypothesis import strategies as st

from e2sim.validation.published import COLUMNS

from fuzzing import check, fresh_dir, fuzz_surface, invoke, json_ok, nasty_values, write_text

# A small valid design (CNV on a PYNQ board at int8: fast to predict) and a listing-only one.
BASE_ROWS = [
    {"id": "X1", "design": "fuzz design", "reference": "none", "device": "xc7z020_pynq", "network": "cnv_cifar10",
     "layers": "all", "precision": "int8", "clock_hz": "100e6", "dsps": "64", "array_rows": "8", "array_cols": "8",
     "dataflow": "ws", "batch": "1", "effective_ops_factor": "1", "throughput_gops": "20", "power_w": "2.5",
     "power_scope": "board", "use_in_fit": "no", "exclude_reason": "", "confidence": "V", "source": "test",
     "notes": ""},
    {"id": "X2", "design": "listed", "reference": "none", "device": "", "network": "", "layers": "",
     "precision": "binary", "clock_hz": "", "dsps": "", "array_rows": "", "array_cols": "", "dataflow": "",
     "batch": "", "effective_ops_factor": "", "throughput_gops": "", "power_w": "", "power_scope": "",
     "use_in_fit": "no", "exclude_reason": "", "confidence": "R", "source": "test", "notes": ""},
]
CELLS = st.one_of(nasty_values().map(lambda v: v if isinstance(v, str) else repr(v) if not isinstance(v, (int, float))
                                     else str(v)),
                  st.sampled_from(["-1", "inf", "-inf", "nan", "0", "1e400", "xc7z999", "vgg99", "int3", "yes",
                                   "maybe", "conv", "os", "fp64", "3.5", "1,5", "", " 8", "zu3eg_edgeboard",
                                   "yolov2_coco416", "alexnet_imagenet", "300", "1e9", "2e12"]))


@st.composite
def designs_csv(draw) -> str:
    rows = [dict(r) for r in draw(st.lists(st.sampled_from(BASE_ROWS), min_size=0, max_size=3))]
    cols = list(COLUMNS)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(("cell", "cell", "cell", "drop", "rename", "add", "dup")))
        if op == "cell" and rows:
            r = draw(st.sampled_from(rows))
            r[draw(st.sampled_from(cols))] = draw(CELLS)
        elif op == "drop" and len(cols) > 1:
            cols.remove(draw(st.sampled_from(cols)))
        elif op == "rename":
            i = draw(st.integers(0, len(cols) - 1))
            cols[i] = cols[i] + draw(st.sampled_from(["_x", " ", "", "s"]))
        elif op == "add":
            cols.append(draw(st.sampled_from(["extra", "power", "id", ""])))
        elif op == "dup" and rows:
            rows.append(dict(draw(st.sampled_from(rows))))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    text = buf.getvalue()
    if draw(st.integers(0, 9)) == 0:
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(['"', "\x00", ",", "\n", "\ufeff"])) + text[i:]
    return text


def _ok(o):
    json_ok(nullable=("published_power_w", "predicted_power_w"))(o)
    rep = json.loads(o.stdout)
    assert set(rep) >= {"rows", "summary"} and rep["summary"]["predicted_rows"] >= 1
    for r in rep["rows"]:
        assert set(r) >= {"id", "published_power_w", "predicted_power_w", "loo_error_rel", "used_in_fit", "reason"}
        if r["source_file"] != "bundled":
            assert r["used_in_fit"] is False
            p = r["predicted_power_w"]
            assert p is None or (math.isfinite(p) and p > 0)


@fuzz_surface(st.data())
def published_rows_csv(tmp_path_factory, data):
    path = write_text(fresh_dir(tmp_path_factory, "rows"), "rows.csv", data.draw(designs_csv()))
    o = invoke(["validate", "--published", "--rows", path, "--output-format", "json"])
    check(o, _ok)
    if o.code == 2:
        assert "rows.csv" in o.stderr, o.describe()
