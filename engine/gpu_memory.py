"""How many layers to put on the GPU, from the GPU's free memory.

Offloading every layer of a model that does not fit fails (or pages badly);
offloading none wastes the GPU. We plan a layer count from the file size and
KV cache, and llama.cpp runs the rest on the CPU. Metal shares system memory
with the CPU, so Apple Silicon takes all layers; for backends we cannot query,
all layers are tried and ``engine.model`` falls back to the CPU on failure.

NOTE: the CUDA query (NVML) is written against NVIDIA's documented C API but
has not run on a GPU yet (no GPU was available when it was written).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys

from engine.gguf_info import ModelInfo

log = logging.getLogger(__name__)

ALL_LAYERS = -1
COMPUTE_RESERVE_BYTES = 768 * 2**20  # llama.cpp's GPU compute buffers, the driver, the desktop


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


def free_gpu_memory_bytes(backend: str) -> int | None:
    """Free memory of the first GPU, or None when unknown (then all layers are tried)."""
    if backend == "CUDA":
        return _nvml_free_bytes()
    return None


class _NvmlMemory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


def _nvml_free_bytes() -> int | None:
    name = "nvml.dll" if sys.platform == "win32" else "libnvidia-ml.so.1"
    path = ctypes.util.find_library("nvidia-ml") or name
    try:
        nvml = ctypes.CDLL(path)
    except OSError:
        return None
    try:
        if nvml.nvmlInit_v2() != 0:
            return None
        handle = ctypes.c_void_p()
        memory = _NvmlMemory()
        if nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) != 0:
            return None
        if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) != 0:
            return None
        return int(memory.free)
    except AttributeError:  # an NVML too old for these entry points
        return None
    finally:
        with contextlib.suppress(AttributeError):
            nvml.nvmlShutdown()
