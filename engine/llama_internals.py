"""The parts of llama-cpp-python's ``Llama`` that are not its public API, in
one place.

Footnote manages llama.cpp's KV cache itself (reuse a cached prefix across
turns, cut it at a stop, shift kept history into place when the oldest is
left out, stop a prompt mid-batch), which the high-level ``Llama`` class does
not offer. That takes fields its authors may rename in any release:
``Llama._ctx`` (the ``LlamaContext`` wrapper, with ``ctx``, ``memory``,
``kv_cache_seq_rm`` and ``kv_cache_seq_shift``) and the token bookkeeping
``Llama.input_ids`` / ``Llama.n_tokens``. Every such access goes through the
functions below, and :func:`check_llama_internals` (run on every model load,
and by tests/engine/test_llama_internals.py) names the field that moved and
the installed version, instead of an ``AttributeError`` in the middle of a
turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import EngineError

if TYPE_CHECKING:
    from llama_cpp import Llama

# (object, attribute) pairs relied on; "Llama._ctx.memory" reads as such.
REQUIRED_FIELDS: tuple[tuple[str, str], ...] = (
    ("Llama", "_ctx"),
    ("Llama", "input_ids"),
    ("Llama", "n_tokens"),
    ("Llama", "model"),
    ("Llama", "eval"),
    ("Llama._ctx", "ctx"),
    ("Llama._ctx", "memory"),
    ("Llama._ctx", "kv_cache_seq_rm"),
    ("Llama._ctx", "kv_cache_seq_shift"),
)
# Low-level bindings used beside them (public, but checked with the rest).
REQUIRED_FUNCTIONS: tuple[str, ...] = (
    "llama_memory_can_shift",
    "llama_set_abort_callback",
    "ggml_abort_callback",
    "llama_set_n_threads",
    "llama_model_get_vocab",
)


class LlamaInternalsChanged(EngineError):
    """The installed llama-cpp-python lacks a field Footnote relies on."""


def llama_cpp_version() -> str:
    import llama_cpp

    return str(getattr(llama_cpp, "__version__", "unknown"))


def missing_internals(llama: Any, module: Any = None) -> list[str]:
    """The required fields ``llama`` (and ``module``: llama_cpp) lack, by name."""
    if module is None:
        import llama_cpp as module
    objects = {"Llama": llama, "Llama._ctx": getattr(llama, "_ctx", None)}
    missing = [
        f"{owner}.{name}"
        for owner, name in REQUIRED_FIELDS
        if objects[owner] is None or not hasattr(objects[owner], name)
    ]
    missing += [f"llama_cpp.{name}" for name in REQUIRED_FUNCTIONS if not hasattr(module, name)]
    return missing


def check_llama_internals(llama: Any, module: Any = None) -> None:
    """Raise :class:`LlamaInternalsChanged` naming every missing field and
    the installed llama-cpp-python version."""
    missing = missing_internals(llama, module)
    if missing:
        version = llama_cpp_version()
        raise LlamaInternalsChanged(
            f"This Footnote does not work with llama-cpp-python {version}: it lacks "
            f"{', '.join(missing)}. Install the version in packaging/constraints.txt "
            "(./dev setup does).",
            detail=f"llama-cpp-python {version}; missing: {missing}",
        )


# ------------------------------------------------------------ handles


def context_handle(llama: Llama) -> Any:
    """The ``llama_context *`` for low-level calls (abort callback, threads)."""
    return llama._ctx.ctx


def model_handle(llama: Llama) -> Any:
    """The ``llama_model *`` for low-level calls (the vocabulary)."""
    return llama.model


# ------------------------------------------------------------ the KV cache


def cached_tokens(llama: Llama) -> list[int]:
    """The tokens llama.cpp's KV cache holds, in order."""
    tokens: list[int] = llama.input_ids[: llama.n_tokens].tolist()
    return tokens


def cached_count(llama: Llama) -> int:
    return int(llama.n_tokens)


def keep_cached(llama: Llama, keep: int) -> None:
    """Forget every cached token from position ``keep`` on (0: all)."""
    llama.n_tokens = keep
    llama._ctx.kv_cache_seq_rm(-1, keep, -1)


def can_shift(llama: Llama) -> bool:
    """Whether llama.cpp can move cached tokens to new positions (not every
    model's memory can, e.g. recurrent ones)."""
    import llama_cpp

    memory = llama._ctx.memory
    return memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))


def remove_span(llama: Llama, start: int, end: int) -> bool:
    """Remove cached positions ``start``..``end`` and shift what follows back
    into place; False (nothing changed) if llama.cpp refuses."""
    n = cached_count(llama)
    if not llama._ctx.kv_cache_seq_rm(0, start, end):
        return False
    llama._ctx.kv_cache_seq_shift(0, end, n, start - end)
    moved = n - end
    llama.input_ids[start : start + moved] = llama.input_ids[end:n].copy()
    llama.n_tokens = start + moved
    return True


def failed_making_context(error: BaseException) -> bool:
    """Whether a failed ``Llama(...)`` got as far as loading the weights and
    then failed to make its context (too large a context or KV cache for the
    memory), told by *where* it was raised (``LlamaContext.__init__``), not
    by its words."""
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_qualname == "LlamaContext.__init__":
            return True
        traceback = traceback.tb_next
    return False
