"""Typed errors of the engine.

Every message is written for the person using the app: it says what went wrong
and what they can do about it, in one or two sentences. Callers show
``str(error)`` as it is; the technical cause, when there is one, is kept in
``detail`` for logs and "copy details" buttons.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class for everything the engine raises on purpose."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ModelNotFound(EngineError):
    """The model path does not exist or is not a file."""


class ModelLoadFailed(EngineError):
    """llama.cpp could not load a file that looked like a model."""


class InvalidModelFile(ModelLoadFailed):
    """The file is not a GGUF model, or is damaged (empty, truncated)."""


class UnsupportedModel(ModelLoadFailed):
    """A valid GGUF whose architecture this build of llama.cpp cannot run."""


class ChatTemplateFailed(EngineError):
    """The model's own chat template refused a conversation while a turn was
    being prepared (the model is loaded and fine; this conversation is not)."""


class ModelFileError(EngineError):
    """A model file could not be deleted or moved."""


class ContextOverflow(EngineError):
    """The turn cannot fit in the model's context window."""

    def __init__(self, message: str, *, needed_tokens: int, limit_tokens: int) -> None:
        super().__init__(message)
        self.needed_tokens = needed_tokens
        self.limit_tokens = limit_tokens


class GenerationFailed(EngineError):
    """llama.cpp failed while evaluating or sampling."""


class HistoryError(EngineError):
    """The conversation database could not be read or written."""


class ServerError(EngineError):
    """A model server (an OpenAI-compatible API) could not answer; ``partial``
    keeps what it had written before it failed, if anything."""

    def __init__(self, message: str, *, detail: str = "", status: int | None = None) -> None:
        super().__init__(message, detail=detail)
        self.status = status  # the HTTP status, when the server sent one


class ServerUnreachable(ServerError):
    """Nothing answers at the server's address (refused, unknown host, no route)."""


class ServerRefusedKey(ServerError):
    """The server wants an API key, or a different one (401, 403)."""


class ServerModelUnknown(ServerError):
    """The server does not serve the model name given (404, or not listed)."""


class ServerBusy(ServerError):
    """The server limits requests (429) or is overloaded (503)."""


class ServerTimedOut(ServerError):
    """The server took too long to start answering, or stalled mid-answer."""


class ServerStreamBroken(ServerError):
    """The answer's stream ended before the answer did (the server stopped or
    the connection dropped)."""


class ServerUnsuitable(ServerError):
    """The server answers, but not in a way Footnote can use (no completions
    endpoint, an unreadable reply)."""


class SendNotRecorded(ServerError):
    """The privacy ledger could not record a prompt about to go to the
    server, so it was not sent (an unrecorded send is worse than none)."""
