"""glibc's malloc keeps a streamed run's freed chunks in its heap; a fixed mmap threshold
gives them back.

glibc serves allocations above its mmap threshold with ``mmap`` (returned to the system on
``free``), the others from the heap. The threshold starts at 128 KiB and rises to the size of
each large block freed, up to 32 MiB, so after the first record batches every per-batch array
(a few MB) comes from the heap; the small tensors kept between them (per-row scores, queued
chunks) then pin the heap, and its size creeps up with the rows read. Fixing the threshold at
1 MiB (``mallopt(M_MMAP_THRESHOLD)``, which also stops the rise) keeps those arrays out of the
heap. Measured in BENCHMARKS.md ("Memory and speed: streaming Parquet shards").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number (malloc.h)."""
MMAP_THRESHOLD_BYTES = 1 << 20


@functools.cache
def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 1 MiB, once per process; False where it does not apply
    (not glibc, or ``mallopt`` refused)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
