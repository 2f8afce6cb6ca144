"""GPU offload: the layers we plan from free GPU memory vs what llama.cpp allocates.

    .venv/bin/python -m bench.gpu_offload                    # Phi-3-mini shape, Q4_K_M
    .venv/bin/python -m bench.gpu_offload --free-gb 2 1      # also pretend smaller GPUs
    .venv/bin/python -m bench.gpu_offload --shape tiny       # seconds, for a smoke run
    .venv/bin/python -m bench.gpu_offload --tokens 0         # only plan and load: seconds

Needs a GPU build of llama-cpp-python (``CMAKE_ARGS="-DGGML_CUDA=on" ./dev setup``,
or Vulkan/Metal). For each scenario, on a freshly loaded model:

* the free GPU memory: what ggml reports (``engine.devices``), or a smaller
  figure given with ``--free-gb`` to stand in for a smaller GPU;
* the layer count ``engine.gpu_memory.plan_gpu_layers`` chooses for it;
* what llama.cpp then did, read from its own log: layers offloaded and the
  model, KV-cache and compute buffers it put on the GPU. The plan is right when
  those buffers fit in the free memory and leave little of it unused;
* generation speed of llama-cpp-python's own loop and of our ``ChatSession``
  on that same load (side by side, as in ``bench.generation``).

Prints a Markdown table and writes ``bench/results/gpu_offload.json``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.generation import (
    cpu_name,
    ensure_model,
    measure_engine,
    measure_raw,
    write_results,
)
from engine.gguf_info import inspect_gguf
from engine.gpu_memory import ALL_LAYERS, free_gpu_memory_bytes, plan_gpu_layers
from engine.hardware import detect_build
from engine.model import LoadOptions, load_model

MIB = 2**20
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute) buffer size =\s+([\d.]+) MiB")


@dataclass
class Scenario:
    name: str
    free_bytes: int
    planned_layers: int  # -1: all
    offloaded: str  # llama.cpp's "N/M"
    gpu_model_bytes: int
    gpu_kv_bytes: int
    gpu_compute_bytes: int
    raw_generation_tps: float
    engine_generation_tps: float
    backend_label: str
    notes: list[str]

    @property
    def gpu_bytes(self) -> int:
        return self.gpu_model_bytes + self.gpu_kv_bytes + self.gpu_compute_bytes

    @property
    def fits(self) -> bool:
        return self.gpu_bytes <= self.free_bytes


class _LlamaLog(logging.Handler):
    """Collects llama.cpp's log lines (routed into Python by ``engine.llama_log``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_scenario(
    path: Path,
    name: str,
    free: int,
    *,
    gpu_layers: int | None,
    gpu_names: set[str],
    args: argparse.Namespace,
) -> Scenario:
    collector = _LlamaLog()
    llama_logger = logging.getLogger("footnote.llama_cpp")
    llama_logger.setLevel(logging.DEBUG)
    llama_logger.addHandler(collector)
    try:
        model = load_model(
            path, LoadOptions(context_tokens=args.context, seed=1, gpu_layers=gpu_layers)
        )
    finally:
        llama_logger.removeHandler(collector)
    raw_tps = engine_tps = 0.0
    try:
        if args.tokens:
            raw_tps = measure_raw(model, args.tokens).generation_tps
            engine_tps = measure_engine(model, args.tokens)[0].generation_tps
        planned, label, notes = model.gpu_layers, model.backend_label, list(model.notes)
    finally:
        model.close()
    offloaded = "?"
    sizes = {"model": 0, "KV": 0, "compute": 0}
    for line in collector.lines:
        if match := _OFFLOADED.search(line):
            offloaded = f"{match[1]}/{match[2]}"
        if (match := _BUFFER.search(line)) and match[1] in gpu_names:
            sizes[match[2]] += int(float(match[3]) * MIB)
    return Scenario(
        name=name,
        free_bytes=free,
        planned_layers=planned,
        offloaded=offloaded,
        gpu_model_bytes=sizes["model"],
        gpu_kv_bytes=sizes["KV"],
        gpu_compute_bytes=sizes["compute"],
        raw_generation_tps=raw_tps,
        engine_generation_tps=engine_tps,
        backend_label=label,
        notes=notes,
    )


def _speed(tokens_per_second: float) -> str:
    return f"{tokens_per_second:.2f}" if tokens_per_second else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=["phi3-mini", "tiny"], default="phi3-mini")
    parser.add_argument(
        "--tokens", type=int, default=32, help="tokens to generate per run (0: only plan and load)"
    )
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument(
        "--free-gb",
        type=float,
        nargs="*",
        default=[],
        help="also plan for GPUs with only this much free memory (GB)",
    )
    args = parser.parse_args()

    build = detect_build()
    if not build.gpus:
        raise SystemExit(
            "No GPU in this llama-cpp-python build (backend: "
            f'{build.backend}). Build one first, e.g. CMAKE_ARGS="-DGGML_CUDA=on" ./dev setup.'
        )
    gpu_names = {gpu.name for gpu in build.gpus}
    for gpu in build.gpus:
        print(
            f"{gpu.name}: {gpu.description} ({gpu.backend}, {gpu.kind}), "
            f"{gpu.free_bytes / 1e9:.2f} of {gpu.total_bytes / 1e9:.2f} GB free"
        )
    path = ensure_model(args.shape)
    info = inspect_gguf(path)
    real_free = free_gpu_memory_bytes(build.gpus) or 0

    scenarios = [
        run_scenario(
            path, "reported free memory", real_free, gpu_layers=None, gpu_names=gpu_names, args=args
        )
    ]
    for gb in args.free_gb:
        free = int(gb * 1e9)
        layers = plan_gpu_layers(info, args.context, free)
        scenarios.append(
            run_scenario(
                path,
                f"pretend {gb:g} GB free",
                free,
                gpu_layers=layers,
                gpu_names=gpu_names,
                args=args,
            )
        )

    machine = f"{build.gpus[0].description} ({build.backend}); {cpu_name()}"
    print(f"\nModel: {path.name} ({info.layer_count} layers), context {args.context}, {machine}\n")
    print(
        "| scenario | free GB | planned layers | llama.cpp offloaded | on GPU GB "
        "(model + KV + compute) | fits | raw gen tok/s | engine gen tok/s |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for s in scenarios:
        planned = "all" if s.planned_layers == ALL_LAYERS else str(s.planned_layers)
        print(
            f"| {s.name} | {s.free_bytes / 1e9:.2f} | {planned} | {s.offloaded} | "
            f"{s.gpu_bytes / 1e9:.2f} ({s.gpu_model_bytes / 1e9:.2f} + "
            f"{s.gpu_kv_bytes / 1e9:.2f} + {s.gpu_compute_bytes / 1e9:.2f}) | "
            f"{'yes' if s.fits else 'NO'} | {_speed(s.raw_generation_tps)} | "
            f"{_speed(s.engine_generation_tps)} |"
        )
    write_results(
        "gpu_offload.json",
        {
            "model": path.name,
            "shape": args.shape,
            "context": args.context,
            "machine": machine,
            "platform": platform.platform(),
            "gpus": [asdict(gpu) for gpu in build.gpus],
            "scenarios": [
                {**asdict(s), "gpu_bytes": s.gpu_bytes, "fits": s.fits} for s in scenarios
            ],
        },
    )


if __name__ == "__main__":
    main()
