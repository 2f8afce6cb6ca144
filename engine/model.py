"""Load a GGUF model into llama.cpp and expose the few operations a turn needs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import llama_log
from engine.chat_template import ChatFormat
from engine.errors import InvalidModelFile, ModelLoadFailed
from engine.gguf_info import ModelInfo, describe_unsupported_architecture, inspect_gguf
from engine.hardware import detect_build, physical_cores

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# 4K is Phi-3-mini's native window. Never 0: llama.cpp then takes the model's
# training context, which for the 128K variants is 48 GiB of KV cache.
DEFAULT_CONTEXT_TOKENS = 4096
MIN_CONTEXT_TOKENS = 256
PROMPT_BATCH_TOKENS = 512

_UNKNOWN_ARCH = re.compile(r"unknown model architecture: '([^']+)'")


@dataclass(frozen=True)
class LoadOptions:
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    threads: int | None = None  # None: physical cores
    gpu_layers: int | None = None  # None: all layers when the build can offload, else 0
    seed: int | None = None  # None: a fresh seed per load


class LocalModel:
    """A loaded model: llama.cpp's ``Llama`` plus what we read from its header."""

    def __init__(
        self,
        llama: Llama,
        info: ModelInfo,
        chat_format: ChatFormat,
        *,
        backend: str,
        gpu_layers: int,
        threads: int,
        notes: tuple[str, ...],
    ) -> None:
        self.llama = llama
        self.info = info
        self.chat_format = chat_format
        self.backend = backend
        self.gpu_layers = gpu_layers
        self.threads = threads
        # Things the user should know about this load (fallbacks, guesses).
        self.notes = notes
        self.stop_token_ids = frozenset(self._single_token_ids(info.stop_tokens))

    @property
    def context_tokens(self) -> int:
        return int(self.llama.n_ctx())

    @property
    def backend_label(self) -> str:
        if self.backend == "CPU" or self.gpu_layers == 0:
            return f"CPU · {self.threads} threads"
        return f"{self.backend} · {self.gpu_layers if self.gpu_layers >= 0 else 'all'} layers"

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        """Tokens of ``text``; special markers like ``<|user|>`` become their tokens."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes a token stands for (control tokens give none)."""
        return bytes(self.llama.detokenize([token], special=False))

    def is_end_of_turn(self, token: int) -> bool:
        import llama_cpp

        if token in self.stop_token_ids:
            return True
        vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    def close(self) -> None:
        self.llama.close()

    def _single_token_ids(self, texts: tuple[str, ...]) -> list[int]:
        ids = []
        for text in texts:
            tokens = self.tokenize(text, add_bos=False)
            if len(tokens) == 1:
                ids.append(tokens[0])
        return ids


def load_model(path: str | Path, options: LoadOptions | None = None) -> LocalModel:
    """Validate and load ``path``. Raises a typed :class:`EngineError` on failure.

    When the build can offload to a GPU and loading there fails (out of VRAM,
    driver trouble), we retry on the CPU and say so in ``notes``.
    """
    options = options or LoadOptions()
    info = inspect_gguf(path)
    chat_format = ChatFormat.for_model(info)
    notes: list[str] = [chat_format.note] if chat_format.note else []

    context = max(options.context_tokens, MIN_CONTEXT_TOKENS)
    if info.context_length and context > info.context_length:
        notes.append(
            f"Context lowered to {info.context_length} tokens, the most this model was trained for."
        )
        context = info.context_length
    threads = options.threads or physical_cores()
    build = detect_build()
    gpu_layers = options.gpu_layers
    if gpu_layers is None:
        gpu_layers = -1 if build.gpu_offload else 0

    try:
        llama = _load_llama(info, context, threads, gpu_layers, options.seed)
    except ModelLoadFailed as gpu_error:
        if gpu_layers == 0 or isinstance(gpu_error, InvalidModelFile):
            raise
        log.warning("GPU load failed, retrying on the CPU: %s", gpu_error.detail)
        llama = _load_llama(info, context, threads, 0, options.seed)
        notes.append(f"Running on the CPU: loading on the {build.backend} GPU failed.")
        gpu_layers = 0
    return LocalModel(
        llama,
        info,
        chat_format,
        backend=build.backend,
        gpu_layers=gpu_layers,
        threads=threads,
        notes=tuple(notes),
    )


def _load_llama(
    info: ModelInfo, context: int, threads: int, gpu_layers: int, seed: int | None
) -> Llama:
    import llama_cpp

    llama_log.install()
    mark = llama_log.error_mark()
    kwargs: dict[str, object] = {}
    if seed is not None:
        kwargs["seed"] = seed
    try:
        return llama_cpp.Llama(
            model_path=str(info.path),
            n_ctx=context,
            n_batch=PROMPT_BATCH_TOKENS,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=gpu_layers,
            verbose=False,
            **kwargs,  # type: ignore[arg-type]
        )
    except (ValueError, RuntimeError, OSError) as exc:
        errors = llama_log.errors_since(mark)
        detail = "\n".join([*errors, f"{type(exc).__name__}: {exc}"])
        for line in errors:
            match = _UNKNOWN_ARCH.search(line)
            if match:
                raise describe_unsupported_architecture(info.path, match.group(1)) from exc
        raise ModelLoadFailed(
            f"llama.cpp could not load {info.path.name}. The file may be damaged or made for a "
            "newer llama.cpp; try downloading it again or choose another model.",
            detail=detail,
        ) from exc


def model_file_label(path: Path) -> str:
    return path.name
