"""The machine's memory read bandwidth, and the decode speed limit it implies.

On a CPU, generating one token reads every weight once (plus the KV cache of
the tokens so far), and that read is what bounds tokens/s: nothing can decode
faster than ``bandwidth / bytes read per token``.

The bandwidth is measured STREAM-style: sum a buffer far larger than the
caches, with one worker thread per core each reading its own slice (numpy
releases the GIL inside the reduction), best of a few repetitions. Summing is
the cheapest "read every byte" kernel numpy has; on AVX2 it keeps up with
DRAM, so the figure is the memory's, not the arithmetic's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUFFER_BYTES = 1 << 30  # 1 GiB: ~30x the last-level cache of any laptop CPU
REPETITIONS = 5


@dataclass(frozen=True)
class Bandwidth:
    bytes_per_s: float  # best of REPETITIONS, all threads together
    threads: int
    buffer_bytes: int

    @property
    def gb_per_s(self) -> float:
        return self.bytes_per_s / 1e9


def measure_read_bandwidth(
    threads: int, buffer_bytes: int = BUFFER_BYTES, repetitions: int = REPETITIONS
) -> Bandwidth:
    data = np.ones(buffer_bytes // 8, dtype=np.float64)  # np.ones touches every page
    slices = np.array_split(data, threads)
    best = 0.0
    for _ in range(repetitions):
        start_line = threading.Barrier(threads + 1)

        workers = [threading.Thread(target=_read_after, args=(start_line, part)) for part in slices]
        for worker in workers:
            worker.start()
        start_line.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - started
        best = max(best, data.nbytes / seconds)
    return Bandwidth(best, threads, data.nbytes)


def _read_after(start_line: threading.Barrier, part: np.ndarray) -> None:
    start_line.wait()
    float(part.sum())


@dataclass(frozen=True)
class BytesPerToken:
    """What one decode step reads from memory."""

    weights: int  # every tensor except the token embedding table
    embedding_row: int  # the one row of the embedding table looked up
    kv_per_context_token: int  # K and V of one earlier token, all layers

    def at_depth(self, depth_tokens: int) -> int:
        return self.weights + self.embedding_row + self.kv_per_context_token * depth_tokens


def bytes_per_token(gguf_path: Path, kv_bytes_per_context_token: int) -> BytesPerToken:
    """From the GGUF's own tensor sizes (any quantization)."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf_path)
    weights = 0
    row = 0
    for tensor in reader.tensors:
        size = int(tensor.n_bytes)
        if tensor.name == "token_embd.weight":
            # get_rows reads one row of the table per token, not the table.
            rows = int(tensor.shape[-1]) if len(tensor.shape) > 1 else 1
            row = size // max(rows, 1)
        else:
            weights += size
    return BytesPerToken(weights, row, kv_bytes_per_context_token)


if __name__ == "__main__":
    import os

    for n in sorted({1, os.cpu_count() or 1}):
        result = measure_read_bandwidth(n)
        print(f"{n} thread(s): {result.gb_per_s:.1f} GB/s")
