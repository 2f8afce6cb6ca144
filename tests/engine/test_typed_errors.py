"""Failures the user can meet are typed engine errors with a sentence to act
on; the raw cause is kept in ``detail``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.errors import ChatTemplateFailed, ModelFileError, ModelLoadFailed
from engine.events import Failed
from engine.library import delete_model
from engine.model import LoadOptions, load_model
from engine.synthetic_model import PHI3_CHAT_TEMPLATE, write_phi3_gguf
from engine.turn import ChatSession, TurnRequest

TEMPLATE_COMPLAINT = "Conversation roles must alternate user/assistant/user/assistant"
# Phi-3's template, refusing one conversation as strict Hugging Face templates do.
PICKY_TEMPLATE = (
    "{% for message in messages %}{% if 'forbidden' in message['content'] %}"
    f"{{{{ raise_exception('{TEMPLATE_COMPLAINT}') }}}}"
    "{% endif %}{% endfor %}" + PHI3_CHAT_TEMPLATE
)


def test_a_chat_template_failure_during_a_turn_is_not_a_load_failure(tmp_path: Path) -> None:
    path = write_phi3_gguf(tmp_path / "picky.gguf", chat_template=PICKY_TEMPLATE)
    model = load_model(path, LoadOptions(seed=1))
    try:
        session = ChatSession(model)
        events = list(session.run(TurnRequest("", [], "a forbidden question"), threading.Event()))
        end = events[-1]
        assert isinstance(end, Failed)
        assert isinstance(end.error, ChatTemplateFailed)
        assert not isinstance(end.error, ModelLoadFailed)  # the model is fine
        assert "new chat" in str(end.error)
        assert TEMPLATE_COMPLAINT not in str(end.error)  # raw text only in the details
        assert TEMPLATE_COMPLAINT in end.error.detail
        # The same model goes on answering other conversations.
        again = list(session.run(TurnRequest("", [], "hello"), threading.Event()))
        assert not isinstance(again[-1], Failed)
    finally:
        model.close()


def test_deleting_a_model_that_cannot_be_deleted_says_why(tmp_path: Path) -> None:
    models = tmp_path / "models"
    stuck = models / "odd.gguf"
    stuck.mkdir(parents=True)  # a folder with a model's name: unlink fails
    with pytest.raises(ModelFileError, match=r"odd\.gguf could not be deleted") as caught:
        delete_model(stuck, models)
    assert caught.value.detail  # the OS error, for "Copy details"
    assert stuck.exists()


def test_deleting_outside_the_models_folder_is_refused_with_a_typed_error(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "mine.gguf"
    elsewhere.write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match="not in Footnote's models folder"):
        delete_model(elsewhere, tmp_path / "models")
    assert elsewhere.exists()
