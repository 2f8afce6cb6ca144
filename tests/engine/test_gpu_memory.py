from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.gguf_info import inspect_gguf
from engine.gpu_memory import ALL_LAYERS, free_gpu_memory_bytes, plan_gpu_layers

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
    # each layer: ~72 MB of weights + 48 MiB of KV at 4K context
    assert abs(layers - 17) <= 2


def test_no_room_means_cpu_only(tiny_model: Path) -> None:
    assert plan_gpu_layers(phi3_mini(tiny_model), 4096, int(0.5 * GB)) == 0


def test_unknown_free_memory_tries_every_layer(tiny_model: Path) -> None:
    assert plan_gpu_layers(phi3_mini(tiny_model), 4096, None) == ALL_LAYERS


def test_no_query_for_backends_without_one() -> None:
    assert free_gpu_memory_bytes("Metal") is None  # unified memory: all layers
    assert free_gpu_memory_bytes("CPU") is None
