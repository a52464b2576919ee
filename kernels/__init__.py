"""numba kernels over flat contiguous buffers (installed as ``lamarr_col.kernels``).

This package imports numpy and numba only; it knows nothing of Awkward arrays or JAX.
"""

__all__: list[str] = []
