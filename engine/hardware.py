"""What this machine and this llama.cpp build can do."""

from __future__ import annotations

import os
from dataclasses import dataclass


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


def detect_build() -> BuildInfo:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    backend = "CPU"
    if offload:
        upper = info.upper()
        for marker, name in (
            ("CUDA", "CUDA"),
            ("METAL", "Metal"),
            ("MTL", "Metal"),
            ("VULKAN", "Vulkan"),
            ("HIP", "ROCm"),
            ("SYCL", "SYCL"),
        ):
            if marker in upper:
                backend = name
                break
        else:
            backend = "GPU"
    return BuildInfo(backend=backend, gpu_offload=offload, system_info=info)
