"""Thread counts of a training run: numba's OpenMP pool launch must not raise torch's thread count (in a
2-worker study that oversubscribed 2 cores with 4 busy threads). Checked in a fresh interpreter, since the
pool launches once per process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sys, tempfile, threading
from pathlib import Path

import pytest
import torch  # before numba, as in e2sim train
from e2sim.train.loop import TrainConfig, train

out = {}
def run():  # a study runs train() on a Dask worker's task thread, after other runs on that thread
    torch.get_num_threads()
    cfg = TrainConfig(workload="resnet20_cifar10", data="synthetic", iterations=2, batch_size=2, psg=True,
                      threads=1, eval_every=10**9)
    with tempfile.TemporaryDirectory() as d:
        train(cfg, Path(d) / "run", log=lambda _m: None)
    import numba
    out["threads"] = (torch.get_num_threads(), numba.get_num_threads())
t = threading.Thread(target=run)
t.start(); t.join()
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh interpreter importing torch, and a 2-iteration run: ~10 s
def test_one_thread_run_keeps_torch_and_numba_at_one_thread():
    # as on a Dask worker, whose nanny sets OMP_NUM_THREADS=1 (then the launch raised torch's count to 2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"threads": [1, 1]}
