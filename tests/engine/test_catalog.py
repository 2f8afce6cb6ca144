from __future__ import annotations

from engine.catalog import find, load_catalog, recommend

GIB = 2**30


def test_catalog_lists_the_phi_family_with_what_a_user_needs() -> None:
    entries = load_catalog()
    ids = {e.id for e in entries}
    assert {
        "phi-3-mini-4k-instruct-q4",
        "phi-3-mini-128k-instruct-q4_k_m",
        "phi-3-medium-4k-instruct-q4_k_m",
        "phi-3-medium-128k-instruct-q4_k_m",
        "phi-3.5-mini-instruct-q4_k_m",
        "phi-4-mini-instruct-q4_k_m",
        "phi-4-q4_k_m",
    } <= ids
    for e in entries:
        assert e.url.startswith("https://") and e.url.endswith(e.file)
        assert e.license and e.native_context > 0 and e.size_bytes > 1e9
    assert [e.id for e in entries if e.default] == ["phi-3-mini-4k-instruct-q4"]


def test_memory_estimate_uses_the_kv_cache_at_the_default_context() -> None:
    mini = find(load_catalog(), "phi-3-mini-4k-instruct-q4")
    assert mini is not None
    # 384 KiB of f16 KV per token x 4096 tokens = 1.5 GiB on top of the file.
    kv = mini.memory_needed_bytes() - mini.size_bytes
    assert 1.5 * GIB <= kv <= 2.2 * GIB


def test_128k_models_run_at_4k_by_default_and_less_when_memory_is_short() -> None:
    long = find(load_catalog(), "phi-3-mini-128k-instruct-q4_k_m")
    assert long is not None
    assert long.context_for() == 4096  # never the 48 GiB full window
    assert long.context_for(available_bytes=long.size_bytes + 1 * GIB) < 4096
    assert long.context_for(available_bytes=0) == 512


def test_recommendation_follows_available_memory() -> None:
    entries = load_catalog()
    assert recommend(entries, 32 * GIB).id == "phi-3-mini-4k-instruct-q4"  # type: ignore[union-attr]
    assert recommend(entries, 1 * GIB) is None
    assert find(entries, "Phi-4 (Q4_K_M)") is find(entries, "phi-4-q4_k_m")


def test_a_gpu_with_its_own_memory_changes_where_a_model_runs() -> None:
    from engine.hardware import MemoryBudget

    entries = load_catalog()
    mini, phi4 = find(entries, "phi-3-mini-4k-instruct-q4"), find(entries, "phi-4-q4_k_m")
    assert mini is not None and phi4 is not None
    laptop = MemoryBudget(ram_bytes=6 * GIB)
    with_gpu = MemoryBudget(ram_bytes=6 * GIB, gpu_bytes=8 * GIB, gpu_name="RTX (CUDA)")
    assert mini.placement(laptop) == "cpu"
    assert mini.placement(with_gpu) == "gpu"
    assert phi4.placement(with_gpu) == "split"  # 8.4 GB of weights: some layers stay on the CPU
    # Phi-4 does not fit in 6 GiB of RAM, but does in RAM plus the GPU's memory.
    assert not phi4.fits(laptop.total_bytes) and phi4.fits(with_gpu.total_bytes)
