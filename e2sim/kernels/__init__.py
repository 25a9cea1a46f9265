"""Bit-exact fixed-point kernels (numba, compiled with ``cache=True``): E2-Train's quantizer and MSB split,
integer conv2d forward / input gradient / weight gradient, and the PSG weight-gradient rule.

Nothing here is imported by the estimate path; import the submodules explicitly.
"""
