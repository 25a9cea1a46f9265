"""Validation against measurements: power-log readers, energy integration per marked window, comparison
with an Estimate, calibration of profile constants (non-negative least squares) and published Zynq-7000 data.

Pure pandas/numpy: nothing here imports torch or numba.
"""
