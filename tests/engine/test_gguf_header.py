from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from engine.gguf_header import HeaderError, read_header


def test_reads_what_gguf_reader_reads(tiny_model: Path) -> None:
    """Every key/value and tensor entry agrees with the gguf library's reader."""
    reference = gguf.GGUFReader(str(tiny_model))
    header = read_header(tiny_model, arrays=("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"))
    expected = {
        name: fld.contents()
        for name, fld in reference.fields.items()
        if not name.startswith("GGUF.")
    }
    assert header.fields.keys() == expected.keys()
    for key, value in header.fields.items():
        if value is None:  # an array not asked for
            assert isinstance(expected[key], list), key
        else:  # (float32 values widen to the same Python float both ways)
            assert value == expected[key], key
    assert header.fields["tokenizer.ggml.tokens"] == expected["tokenizer.ggml.tokens"]
    assert [(t.name, t.type_id, t.n_elements, t.offset) for t in header.tensors] == [
        (t.name, int(t.tensor_type), int(t.n_elements), int(t.data_offset) - reference.data_offset)
        for t in reference.tensors
    ]
    assert header.data_offset == reference.data_offset


def test_arrays_not_asked_for_are_skipped(tiny_model: Path) -> None:
    header = read_header(tiny_model)
    assert header.fields["tokenizer.ggml.tokens"] is None
    assert header.fields["general.architecture"] == "phi3"


def test_a_cut_header_is_a_header_error(tiny_model: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:2000])
    with pytest.raises(HeaderError):
        read_header(cut, arrays=("tokenizer.ggml.tokens",))
