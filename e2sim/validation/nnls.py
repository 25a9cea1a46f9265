"""Non-negative least squares, min ||A x - b||_2 subject to x >= 0, by the Lawson-Hanson active-set method
(Lawson & Hanson, "Solving Least Squares Problems", 1974, ch. 23). numpy only: scipy is not a dependency,
and calibration problems are small (a few constants, tens of windows)."""
from __future__ import annotations

import numpy as np


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> tuple[np.ndarray, float]:
    """(x, ||A x - b||) with x >= 0 minimising the residual. Columns of A should be of similar scale
    (the caller normalises them); the tolerance is relative to A's size and magnitude."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    m, n = a.shape
    if b.shape != (m,):
        raise ValueError(f"b has shape {b.shape}, expected ({m},)")
    tol = 10 * np.finfo(float).eps * max(m, n) * max(np.abs(a).sum(0).max(initial=0.0), 1e-300) * max(np.abs(b).max(initial=0.0), 1.0)
    max_iter = 3 * n if max_iter is None else max_iter
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)  # the set P: variables free to be positive
    w = a.T @ (b - a @ x)  # negative gradient of the objective / 2
    skip = np.zeros(n, dtype=bool)  # variables whose entry failed numerically (z_j <= 0 at once)
    for _ in range(max_iter):
        free = ~passive & ~skip
        if not free.any() or w[free].max() <= tol:
            break
        j = int(np.argmax(np.where(free, w, -np.inf)))
        passive[j] = True
        first = True
        while True:  # inner loop: least squares on P, stepping back while it leaves the feasible set
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x, skip[:] = z, False
                break
            if first and z[j] <= 0:  # the gradient said j helps but the solve disagrees: rounding
                passive[j], skip[j] = False, True
                break
            skip[:] = False  # x is about to change, so every variable may be tried again
            first = False
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > np.finfo(float).eps * n * np.abs(x).max(initial=0.0)
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    else:
        raise RuntimeError(f"nnls did not converge in {max_iter} iterations")
    return x, float(np.linalg.norm(a @ x - b))
