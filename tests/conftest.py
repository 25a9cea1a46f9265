import os

# Deterministic, quiet runs on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
