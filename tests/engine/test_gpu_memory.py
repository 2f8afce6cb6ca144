from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.devices import ComputeDevice, compute_devices
from engine.gguf_info import inspect_gguf
from engine.gpu_memory import ALL_LAYERS, free_gpu_memory_bytes, plan_gpu_layers
from engine.hardware import detect_build, memory_budget

GB = 1_000_000_000


def phi3_mini(tiny_model: Path):  # the header of Phi-3-mini Q4 (2.39 GB, 32 layers)
    return dataclasses.replace(
        inspect_gguf(tiny_model),
        file_size_bytes=int(2.39 * GB),
        layer_count=32,
        kv_bytes_per_token=393216,
    )


def test_a_gpu_with_room_takes_every_layer(tiny_model: Path) -> None:
    assert plan_gpu_layers(phi3_mini(tiny_model), 4096, 8 * GB) == ALL_LAYERS


def test_a_small_gpu_takes_what_fits(tiny_model: Path) -> None:
    layers = plan_gpu_layers(phi3_mini(tiny_model), 4096, 3 * GB)
    assert 0 < layers < 32
    # (3 GB - 0.5 GiB reserve) / (~72 MB of weights + 48 MiB of KV at 4K context)
    assert abs(layers - 20) <= 1


def test_no_room_means_cpu_only(tiny_model: Path) -> None:
    assert plan_gpu_layers(phi3_mini(tiny_model), 4096, int(0.5 * GB)) == 0


def test_unknown_free_memory_tries_every_layer(tiny_model: Path) -> None:
    assert plan_gpu_layers(phi3_mini(tiny_model), 4096, None) == ALL_LAYERS


def gpu(free_gb: float, *, backend: str = "CUDA", kind: str = "gpu", total_gb: float = 8):
    return ComputeDevice(
        name=f"{backend}0",
        description="Test GPU",
        backend=backend,
        kind=kind,
        free_bytes=int(free_gb * GB),
        total_bytes=int(total_gb * GB),
    )


def test_free_memory_adds_up_over_gpus() -> None:
    # llama.cpp splits the layers over every GPU in proportion to free memory
    assert free_gpu_memory_bytes([gpu(3), gpu(1.5)]) == int(4.5 * GB)


def test_no_gpu_or_no_figure_means_unknown() -> None:
    assert free_gpu_memory_bytes([]) is None
    assert free_gpu_memory_bytes([gpu(0, total_gb=0)]) is None  # a device that cannot tell


def test_budget_counts_dedicated_gpu_memory_once() -> None:
    budget = memory_budget([gpu(6)], ram_bytes=10 * GB)
    assert budget.total_bytes == 16 * GB
    assert budget.gpu_name == "Test GPU, CUDA"
    # integrated GPUs and Apple Silicon share the RAM already counted
    assert memory_budget([gpu(6, kind="igpu")], ram_bytes=10 * GB).total_bytes == 10 * GB
    assert memory_budget([gpu(6, backend="Metal")], ram_bytes=10 * GB).total_bytes == 10 * GB


def test_this_build_lists_its_devices_with_their_memory() -> None:
    # Every build registers at least the CPU; it reports the machine's memory.
    devices = compute_devices()
    cpu = next(device for device in devices if device.kind == "cpu")
    assert cpu.backend == "CPU"
    assert 0 < cpu.free_bytes <= cpu.total_bytes
    build = detect_build()
    assert build.gpus == tuple(device for device in devices if device.is_gpu)
    if not build.gpus:
        assert free_gpu_memory_bytes(build.gpus) is None
