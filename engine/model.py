"""Load a GGUF model into llama.cpp and expose the few operations a turn needs."""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import llama_log
from engine.chat_template import ChatFormat
from engine.cpu_share import CpuShare
from engine.errors import InvalidModelFile, ModelLoadFailed
from engine.gguf_info import ModelInfo, describe_unsupported_architecture, inspect_gguf
from engine.gpu_memory import ALL_LAYERS, free_gpu_memory_bytes, plan_gpu_layers
from engine.hardware import MemoryBudget, detect_build, memory_budget, physical_cores
from engine.llama_internals import (
    LlamaInternalsChanged,
    check_llama_internals,
    context_handle,
    failed_making_context,
    model_handle,
)
from engine.prompt_tokens import PromptTokenizer

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

# 4K is Phi-3-mini's native window. Never 0: llama.cpp then takes the model's
# training context, which for the 128K variants is 48 GiB of KV cache.
DEFAULT_CONTEXT_TOKENS = 4096
MIN_CONTEXT_TOKENS = 256
PROMPT_BATCH_TOKENS = 512
# Below this a chat is not useful; refuse rather than load a crippled model.
MIN_USEFUL_CONTEXT_TOKENS = 512
RUNTIME_OVERHEAD_BYTES = 600 * 2**20  # llama.cpp compute buffers, tokenizer, the app
Q8_KV_FRACTION = 34 / 64  # q8_0 stores 32 values in 34 bytes, f16 in 64

_UNKNOWN_ARCH = re.compile(r"unknown model architecture: '([^']+)'")


@dataclass(frozen=True)
class LoadOptions:
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    threads: int | None = None  # None: physical cores
    gpu_layers: int | None = None  # None: all layers when the build can offload, else 0
    seed: int | None = None  # None: a fresh seed per load
    # Store the KV cache in 8 bits (q8_0) with flash attention: ~half the
    # memory per token of context, for long contexts on small machines.
    kv_cache_8bit: bool = False


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
        # Set when the thread count is Footnote's to choose (not the user's):
        # see fit_threads_to_load.
        self.cpu_share: CpuShare | None = None
        import llama_cpp

        # Looked up once here rather than on every token.
        self._vocab = llama_cpp.llama_model_get_vocab(model_handle(llama))
        self._vocab_is_eog = llama_cpp.llama_vocab_is_eog

    @property
    def context_tokens(self) -> int:
        return int(self.llama.n_ctx())

    @property
    def backend_label(self) -> str:
        if self.backend == "CPU" or self.gpu_layers == 0:
            return f"CPU · {self.threads} thread{'s' if self.threads != 1 else ''}"
        total = self.info.layer_count
        if self.gpu_layers < 0 or self.gpu_layers >= total:
            return f"{self.backend} · all {total} layers"
        return f"{self.backend} · {self.gpu_layers} of {total} layers on the GPU"

    @property
    def vocab(self) -> object:
        """llama.cpp's vocabulary handle, for ``llama_vocab_*`` calls."""
        return self._vocab

    @functools.cached_property
    def prompt_tokenizer(self) -> PromptTokenizer:
        """Prompt parts to tokens; only the chat template makes control tokens."""
        return PromptTokenizer(self)

    @property
    def control_tokens(self) -> frozenset[int]:
        """The ids of the tokens a chat template's markers become (``<|user|>``,
        ``<|end|>``…): where a prompt is cut into pieces (engine.prompt_cache)."""
        return self.prompt_tokenizer.marker_ids

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        """Tokens of ``text``. ``special``: markers like ``<|user|>`` in it
        become their control tokens; only for text we wrote ourselves, never
        for content (see engine.prompt_tokens)."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes a token stands for (control tokens give none)."""
        return bytes(self.llama.detokenize([token], special=False))

    def is_end_of_turn(self, token: int) -> bool:
        """Called once per generated token: keep it to set lookups and one C call."""
        if token in self.stop_token_ids:
            return True
        return bool(self._vocab_is_eog(self._vocab, token))

    def fit_threads_to_load(self) -> None:
        """Before a turn: run on the cores other programs leave free
        (engine.cpu_share), unless the user chose a thread count."""
        if self._fits_threads_to_load() and self.cpu_share is not None:
            self._set_threads(self.cpu_share.threads())

    def start_thread_look(self) -> bool:
        """Mid-answer, the token pace jumped: start looking at the CPUs
        (False: nothing to look at, the user's count or all layers on a GPU)."""
        if not self._fits_threads_to_load() or self.cpu_share is None:
            return False
        self.cpu_share.restart()
        return True

    def finish_thread_look(self) -> bool:
        """Between two tokens after :meth:`start_thread_look`: set the count
        the look found once it has seen enough (True), else decode on."""
        count = self.cpu_share.threads_when_ready() if self.cpu_share is not None else None
        if count is None:
            return self.cpu_share is None
        self._set_threads(count)
        return True

    def _fits_threads_to_load(self) -> bool:
        on_gpu = self.gpu_layers < 0 or self.gpu_layers >= self.info.layer_count
        return self.cpu_share is not None and not on_gpu

    def _set_threads(self, count: int) -> None:
        if count != self.threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(context_handle(self.llama), count, count)
            self.threads = count

    def close(self) -> None:
        if self.cpu_share is not None:
            self.cpu_share.close()  # its counter-reading thread
        self.llama.close()

    def _single_token_ids(self, texts: tuple[str, ...]) -> list[int]:
        ids = []
        for text in texts:
            tokens = self.tokenize(text, add_bos=False, special=True)
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
    if info.chat_token_warning:
        log.warning("%s", info.chat_token_warning)
        notes.insert(0, info.chat_token_warning)

    context = max(options.context_tokens, MIN_CONTEXT_TOKENS)
    if info.context_length and context > info.context_length:
        notes.append(
            f"Context lowered to {info.context_length} tokens, the most this model was trained for."
        )
        context = info.context_length
    build = detect_build()
    # Layers on a GPU with its own memory do not need RAM: count both.
    budget = memory_budget(build.gpus if options.gpu_layers != 0 else ())
    context, memory_note = _fit_context_in_memory(info, context, options.kv_cache_8bit, budget)
    if memory_note:
        notes.append(memory_note)
    threads = options.threads or physical_cores()
    gpu_layers = options.gpu_layers
    if gpu_layers is None:
        gpu_layers = 0
        if build.gpu_offload:
            free = free_gpu_memory_bytes(build.gpus)
            gpu_layers = plan_gpu_layers(info, context, free)
            if free is not None and gpu_layers != ALL_LAYERS:
                notes.append(
                    f"{gpu_layers} of {info.layer_count} layers run on the GPU "
                    f"({free / 1e9:.1f} GB free there); the rest on the CPU."
                )
            log.info(
                "GPUs %s; %.2f GB free; planned %s of %d layers",
                [f"{gpu.name} {gpu.description}" for gpu in build.gpus],
                (free or 0) / 1e9,
                "all" if gpu_layers == ALL_LAYERS else gpu_layers,
                info.layer_count,
            )

    llama: Llama | None = None
    if options.kv_cache_8bit:
        try:
            llama = _load_llama(info, context, threads, gpu_layers, options)
        except ModelLoadFailed as exc:
            log.warning("8-bit KV cache refused: %s", exc.detail)
            notes.append("This model cannot use the 8-bit KV cache; using the normal one.")
            options = dataclasses.replace(options, kv_cache_8bit=False)
    if llama is None:
        llama, gpu_layers, note = _load_with_gpu_fallback(
            info, context, threads, options, gpu_layers=gpu_layers, backend=build.backend
        )
        if note:
            notes.append(note)
    model = LocalModel(
        llama,
        info,
        chat_format,
        backend=build.backend,
        gpu_layers=gpu_layers,
        threads=threads,
        notes=tuple(notes),
    )
    if options.threads is None:
        model.cpu_share = CpuShare(threads)
    return model


def _load_with_gpu_fallback(
    info: ModelInfo,
    context: int,
    threads: int,
    options: LoadOptions,
    *,
    gpu_layers: int,
    backend: str,
) -> tuple[Llama, int, str]:
    """Load with ``gpu_layers``; if the GPU refuses (out of memory: our plan or
    another app's use was off), try half as many layers, then the CPU alone.
    Returns the model, the layers it runs on the GPU, and a note if we fell back."""
    total = info.layer_count
    planned = total if gpu_layers == ALL_LAYERS else gpu_layers
    attempts = [gpu_layers] + ([planned // 2] if planned // 2 > 0 else []) + [0]
    for index, layers in enumerate(attempts):
        try:
            llama = _load_llama(info, context, threads, layers, options)
        except ModelLoadFailed as error:
            if layers == 0 or isinstance(error, InvalidModelFile):
                raise
            log.warning("loading with %s GPU layers failed: %s", layers, error.detail)
            continue
        if index == 0:
            return llama, layers, ""
        if layers == 0:
            return llama, 0, f"Running on the CPU: loading on the {backend} GPU failed."
        return (
            llama,
            layers,
            (
                f"{layers} of {total} layers run on the {backend} GPU: it had no room for "
                f"{planned}. The rest run on the CPU."
            ),
        )
    raise AssertionError("unreachable: the CPU attempt either returns or raises")


def _fit_context_in_memory(
    info: ModelInfo, context: int, kv_8bit: bool, budget: MemoryBudget
) -> tuple[int, str]:
    """Lower the context when the KV cache would not fit in free memory (the
    128K variants at a large context), or refuse when even a small one cannot."""
    per_token = info.kv_bytes_per_token * (Q8_KV_FRACTION if kv_8bit else 1.0)
    if per_token <= 0:
        return context, ""
    available = budget.total_bytes
    where = "RAM and GPU memory" if budget.gpu_bytes else "memory"
    room = available - info.file_size_bytes - RUNTIME_OVERHEAD_BYTES
    fits = int(room // per_token) // 256 * 256
    if fits >= context:
        return context, ""
    if fits < MIN_USEFUL_CONTEXT_TOKENS:
        needed = (
            info.file_size_bytes + RUNTIME_OVERHEAD_BYTES + per_token * MIN_USEFUL_CONTEXT_TOKENS
        )
        raise ModelLoadFailed(
            f"Not enough free memory for {info.path.name}: it needs about {needed / 1e9:.1f} GB "
            f"and {available / 1e9:.1f} GB of {where} is free. Close other apps, or choose a "
            "smaller model such as Phi-3-mini."
        )
    note = f"Context lowered to {fits:,} tokens to fit in the {available / 1e9:.1f} GB of free "
    note += f"{where}."
    if not kv_8bit:
        note += " The 8-bit KV cache in Settings roughly doubles what fits."
    return fits, note


def maps_weights(gpu_layers: int) -> bool:
    """Whether llama.cpp should mmap the file rather than read it into memory.

    On the CPU, llama.cpp repacks most weight matrices (Q4_K into q4_K_8x8 on
    AVX2) into a buffer of its own, so with mmap those tensors live twice: the
    repacked copy plus the file pages it was read from, which stay mapped and
    count in the process's memory (Phi-3-mini Q4_K_M at 4K context: 5.2 GiB
    resident with mmap, 3.8 GiB without, measured by bench.engine). Reading
    instead costs ~1 s more per load from a warm page cache. GPU backends keep
    mmap: Metal uses the mapping itself, and CUDA copies from it once.
    """
    return gpu_layers > 0


def _load_llama(
    info: ModelInfo, context: int, threads: int, gpu_layers: int, options: LoadOptions
) -> Llama:
    import llama_cpp

    llama_log.install()
    mark = llama_log.error_mark()
    kwargs: dict[str, object] = {}
    if options.seed is not None:
        kwargs["seed"] = options.seed
    if options.kv_cache_8bit:
        kwargs.update(
            type_k=llama_cpp.GGML_TYPE_Q8_0, type_v=llama_cpp.GGML_TYPE_Q8_0, flash_attn=True
        )
    try:
        llama = llama_cpp.Llama(
            model_path=str(info.path),
            n_ctx=context,
            n_batch=PROMPT_BATCH_TOKENS,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=gpu_layers,
            use_mmap=maps_weights(gpu_layers),
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
        if info.chat_token_warning and any("vocabulary" in line for line in errors):
            # llama.cpp's Phi-3 rules look the chat tokens up by name and fail.
            raise InvalidModelFile(info.chat_token_warning, detail=detail) from exc
        if failed_making_context(exc):
            raise ModelLoadFailed(
                f"llama.cpp loaded {info.path.name} but could not set up its context with these "
                "settings. Lower the context size, or turn off the 8-bit KV cache, in Settings.",
                detail=detail,
            ) from exc
        raise ModelLoadFailed(
            f"llama.cpp could not load {info.path.name}. The file may be damaged or made for a "
            "newer llama.cpp; try downloading it again or choose another model.",
            detail=detail,
        ) from exc
    try:  # a llama-cpp-python upgrade that moved a field: say so now, not mid-turn
        check_llama_internals(llama)
    except LlamaInternalsChanged:
        llama.close()
        raise
    return llama
