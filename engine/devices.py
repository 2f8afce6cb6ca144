"""The compute devices llama.cpp sees, with their free memory.

We ask ggml's own device registry (``ggml_backend_dev_*`` in the libggml that
llama-cpp-python ships) rather than a vendor library: it is what llama.cpp
itself uses to place layers, it answers for every backend the build has (CUDA
through ``cudaMemGetInfo``, Vulkan through the memory-budget extension, Metal
through the recommended working-set size, the CPU through the OS), and it lists
exactly the devices this build can use. llama-cpp-python binds none of these
functions, so we declare them here with ctypes.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# enum ggml_backend_dev_type in ggml-backend.h
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}
# Registry names as users know them ("MTL" is ggml's name for Metal).
_BACKEND_NAMES = {"MTL": "Metal", "HIP": "ROCm"}


@dataclass(frozen=True)
class ComputeDevice:
    name: str  # ggml's device name: "CUDA0", "Vulkan0", "MTL0", "CPU"
    description: str  # what the user calls it: "NVIDIA GeForce RTX 4060"
    backend: str  # "CUDA", "Vulkan", "Metal", "ROCm", "SYCL", "CPU", ...
    kind: str  # "cpu", "gpu" (own memory), "igpu" (shares system memory), "accel", "meta"
    free_bytes: int
    total_bytes: int

    @property
    def is_gpu(self) -> bool:
        return self.kind in ("gpu", "igpu")

    @property
    def shares_system_memory(self) -> bool:
        """Integrated GPUs and Apple Silicon: its memory is the RAM we already count."""
        return self.kind == "igpu" or self.backend == "Metal"


def compute_devices() -> tuple[ComputeDevice, ...]:
    """Every device this llama.cpp build registered, in llama.cpp's order.

    Empty when the registry cannot be read (an unexpected build); callers then
    behave as if there were no GPU information rather than failing.
    """
    try:
        ggml = _ggml()
    except (ImportError, OSError, AttributeError) as exc:
        log.warning("cannot list llama.cpp's devices: %s", exc)
        return ()
    devices = []
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        ggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        registry = _text(ggml.ggml_backend_reg_name(ggml.ggml_backend_dev_backend_reg(device)))
        devices.append(
            ComputeDevice(
                name=_text(ggml.ggml_backend_dev_name(device)),
                description=_text(ggml.ggml_backend_dev_description(device)),
                backend=_BACKEND_NAMES.get(registry, registry),
                kind=_DEVICE_KINDS.get(ggml.ggml_backend_dev_type(device), "unknown"),
                free_bytes=int(free.value),
                total_bytes=int(total.value),
            )
        )
    return tuple(devices)


def gpu_devices() -> tuple[ComputeDevice, ...]:
    return tuple(device for device in compute_devices() if device.is_gpu)


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", errors="replace")


@functools.cache
def _ggml() -> ctypes.CDLL:
    """libggml as llama-cpp-python loaded it, with the device functions typed.

    The ``ggml_backend_dev_*`` functions live in libggml-base, a dependency of
    libggml, so symbol lookup through libggml's handle finds them.
    """
    from llama_cpp._ggml import libggml

    device, registry = ctypes.c_void_p, ctypes.c_void_p
    size_p = ctypes.POINTER(ctypes.c_size_t)
    signatures: dict[str, tuple[list[type], type | None]] = {
        "ggml_backend_dev_count": ([], ctypes.c_size_t),
        "ggml_backend_dev_get": ([ctypes.c_size_t], device),
        "ggml_backend_dev_name": ([device], ctypes.c_char_p),
        "ggml_backend_dev_description": ([device], ctypes.c_char_p),
        "ggml_backend_dev_type": ([device], ctypes.c_int),
        "ggml_backend_dev_memory": ([device, size_p, size_p], None),
        "ggml_backend_dev_backend_reg": ([device], registry),
        "ggml_backend_reg_name": ([registry], ctypes.c_char_p),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(libggml, name)
        function.argtypes = argtypes
        function.restype = restype
    return libggml
