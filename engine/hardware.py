"""What this machine and this llama.cpp build can do."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from engine.devices import ComputeDevice, gpu_devices


def physical_cores() -> int:
    """Physical cores: llama.cpp generation is memory-bound and hyper-threads
    only add contention, so this is the best default thread count."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def available_memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class BuildInfo:
    """The compute backend the installed llama-cpp-python was compiled for."""

    backend: str  # "CPU", "CUDA", "Metal", "Vulkan", "ROCm", "SYCL"
    gpu_offload: bool
    system_info: str
    gpus: tuple[ComputeDevice, ...] = ()  # what the build found, with free memory


def detect_build() -> BuildInfo:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    gpus = gpu_devices() if offload else ()
    backend = "CPU"
    if gpus:
        backend = gpus[0].backend
    elif offload:
        # A GPU build that found no device (no driver, no GPU): llama.cpp runs
        # on the CPU, but say which build this is.
        upper = info.upper()
        backend = next((name for marker, name in _SYSTEM_INFO_MARKERS if marker in upper), "GPU")
    return BuildInfo(backend=backend, gpu_offload=offload, system_info=info, gpus=gpus)


_SYSTEM_INFO_MARKERS = (
    ("CUDA", "CUDA"),
    ("METAL", "Metal"),
    ("MTL", "Metal"),
    ("VULKAN", "Vulkan"),
    ("HIP", "ROCm"),
    ("SYCL", "SYCL"),
)


@dataclass(frozen=True)
class MemoryBudget:
    """Memory a model can use: free RAM plus free memory on GPUs that have
    their own (llama.cpp splits a model between the two). An integrated GPU or
    Apple Silicon shares the RAM already counted, so it adds nothing."""

    ram_bytes: int
    gpu_bytes: int = 0
    gpu_name: str = ""  # "NVIDIA GeForce RTX 4060, CUDA", or "" without a GPU of its own

    @property
    def total_bytes(self) -> int:
        return self.ram_bytes + self.gpu_bytes


def memory_budget(gpus: Sequence[ComputeDevice], ram_bytes: int | None = None) -> MemoryBudget:
    ram = available_memory_bytes() if ram_bytes is None else ram_bytes
    dedicated = [gpu for gpu in gpus if not gpu.shares_system_memory and gpu.total_bytes > 0]
    if not dedicated:
        return MemoryBudget(ram_bytes=ram)
    names = "; ".join(f"{gpu.description}, {gpu.backend}" for gpu in dedicated)
    return MemoryBudget(
        ram_bytes=ram, gpu_bytes=sum(gpu.free_bytes for gpu in dedicated), gpu_name=names
    )
