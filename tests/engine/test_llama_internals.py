"""The llama-cpp-python fields Footnote relies on beyond the public API
(engine/llama_internals.py). If an upgrade renames one, this fails first,
naming the field and the installed version."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from engine import llama_internals
from engine.llama_internals import (
    LlamaInternalsChanged,
    cached_count,
    cached_tokens,
    can_shift,
    check_llama_internals,
    failed_making_context,
    keep_cached,
    missing_internals,
    remove_span,
)
from engine.model import load_model


def test_the_installed_llama_cpp_python_has_every_field_footnote_uses(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    try:
        missing = missing_internals(model.llama)
        assert not missing, (
            f"llama-cpp-python {llama_internals.llama_cpp_version()} changed: "
            f"{', '.join(missing)} no longer exist. Update engine/llama_internals.py "
            "to the new names (and packaging/constraints.txt to the new version)."
        )
        # And they still mean what the adapter assumes: a cache that counts,
        # lists its tokens, shrinks and shifts.
        llama = model.llama
        tokens = model.tokenize("one two three four five six seven eight", add_bos=False)
        llama.eval(tokens)
        assert cached_count(llama) == len(tokens)
        assert cached_tokens(llama) == list(tokens)
        if can_shift(llama):
            assert remove_span(llama, 2, 4)
            assert cached_tokens(llama) == [*tokens[:2], *tokens[4:]]
        keep_cached(llama, 1)
        assert cached_tokens(llama) == list(tokens[:1])
        keep_cached(llama, 0)
        assert cached_count(llama) == 0
    finally:
        model.close()


def test_a_missing_field_is_named_with_the_version() -> None:
    class RenamedContext:
        ctx = memory = kv_cache_seq_rm = None  # kv_cache_seq_shift is gone

    llama = types.SimpleNamespace(
        _ctx=RenamedContext(), input_ids=[], n_tokens=0, model=None, eval=None
    )
    module = types.SimpleNamespace(
        **dict.fromkeys(llama_internals.REQUIRED_FUNCTIONS[1:])  # llama_memory_can_shift gone
    )
    with pytest.raises(LlamaInternalsChanged) as raised:
        check_llama_internals(llama, module)
    message = str(raised.value)
    assert "Llama._ctx.kv_cache_seq_shift" in message
    assert "llama_cpp.llama_memory_can_shift" in message
    assert f"llama-cpp-python {llama_internals.llama_cpp_version()}" in message
    assert "packaging/constraints.txt" in message


def test_a_context_llama_cpp_cannot_make_is_told_by_where_it_failed(tiny_model: Path) -> None:
    """A quantized V cache without flash attention is refused when llama.cpp
    makes the context (after the weights loaded): the failure is recognised
    by where it was raised, whatever its wording."""
    import llama_cpp

    with pytest.raises(ValueError) as failure:
        llama_cpp.Llama(str(tiny_model), type_v=8, flash_attn=False, verbose=False)
    assert failed_making_context(failure.value)
    try:
        raise ValueError("Failed to create llama_context")  # the same words, elsewhere
    except ValueError as elsewhere:
        assert not failed_making_context(elsewhere)
