"""How many layers to put on the GPU, from the GPU's free memory.

Offloading every layer of a model that does not fit fails (or pages badly);
offloading none wastes the GPU. We plan a layer count from the file size and
KV cache against the free memory ggml reports for the build's GPUs
(``engine.devices``), and llama.cpp runs the rest on the CPU. When no GPU
reports its memory, all layers are tried and ``engine.model`` falls back to
the CPU if that load fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.devices import ComputeDevice
from engine.gguf_info import ModelInfo

ALL_LAYERS = -1
# llama.cpp's compute buffers on the GPU plus headroom for the driver and other
# apps. Measured (bench/gpu_offload.py, Phi-3-mini Q4_K_M, 4K context, Vulkan):
# 0.10-0.17 GB of compute buffers, and our per-layer estimate within 2% of
# llama.cpp's model + KV buffers. If a load still fails, engine.model retries
# with half the layers before giving up on the GPU.
COMPUTE_RESERVE_BYTES = 512 * 2**20


def plan_gpu_layers(info: ModelInfo, context_tokens: int, free_bytes: int | None) -> int:
    """-1 for all layers, else how many of ``info.layer_count`` fit in ``free_bytes``."""
    if free_bytes is None or info.layer_count <= 0:
        return ALL_LAYERS
    # The token embedding and output matrices weigh about one more layer.
    per_layer = info.file_size_bytes / (info.layer_count + 1)
    kv_per_layer = info.kv_bytes_per_token / info.layer_count * context_tokens
    fits = int((free_bytes - COMPUTE_RESERVE_BYTES) // (per_layer + kv_per_layer))
    if fits >= info.layer_count + 1:
        return ALL_LAYERS
    return max(min(fits, info.layer_count), 0)


def free_gpu_memory_bytes(gpus: Sequence[ComputeDevice]) -> int | None:
    """Free memory across the GPUs (llama.cpp splits layers over all of them in
    proportion to their free memory), or None when none reports a figure."""
    known = [gpu.free_bytes for gpu in gpus if gpu.total_bytes > 0]
    return sum(known) if known else None
