"""Quantize a GGUF with llama.cpp's own quantizer (``llama_model_quantize``)."""

from __future__ import annotations

from pathlib import Path

from engine import llama_log
from engine.errors import EngineError
from engine.hardware import physical_cores

# Names users type (lower case) -> llama.cpp file types (LLAMA_FTYPE_MOSTLY_*).
QUANT_TYPES = {
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
}
DEFAULT_QUANT = "q4_k_m"
# The quantizer's output grows under this name. Not ".part": that is a
# download's resumable file (engine.download), and a killed quantization's
# leftover must never be mistaken for one and "resumed".
QUANTIZING_SUFFIX = ".quantizing"


class QuantizationFailed(EngineError):
    """llama.cpp's quantizer refused or failed."""


def quantize_gguf(source: Path, target: Path, kind: str = DEFAULT_QUANT) -> Path:
    """Write ``target`` quantized to ``kind``. The output appears only when
    complete (written to ``*.quantizing`` first), so a crash never leaves a partial
    GGUF that looks like a model."""
    import llama_cpp

    if kind not in QUANT_TYPES:
        raise QuantizationFailed(
            f"Unknown quantization “{kind}”. Choose one of: {', '.join(QUANT_TYPES)}."
        )
    llama_log.install()  # the quantizer logs per tensor; keep it out of the terminal
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[kind])
    params.nthread = physical_cores()
    partial = target.with_name(target.name + QUANTIZING_SUFFIX)
    mark = llama_log.error_mark()
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if code != 0:
        partial.unlink(missing_ok=True)
        raise QuantizationFailed(
            f"llama.cpp could not quantize {source.name} to {kind.upper()}. "
            "Check that the disk has room for the output and the source file is complete.",
            detail="\n".join(llama_log.errors_since(mark)) or f"return code {code}",
        )
    partial.replace(target)
    return target
