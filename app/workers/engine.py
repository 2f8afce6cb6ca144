"""The long-lived engine thread: owns the one loaded model, runs turns in order.

The GUI talks to it only through :class:`EngineController` (GUI thread), which
forwards requests as queued signals and re-emits the engine's plain events as
Qt signals. Stop is a ``threading.Event`` set directly from the GUI thread: the
worker is busy inside a turn and could not process a queued "stop" message
until the turn ended.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.wiring.model_server import ServerChoice, ServerLedger
from app.wiring.model_server import connect as connect_server
from app.workers.jobs import wait_visibly
from engine.context import ContextSource
from engine.devices import ComputeDevice
from engine.errors import EngineError, GenerationFailed, ModelLoadFailed
from engine.events import Failed, Finished, Sources
from engine.gguf_info import inspect_gguf
from engine.hardware import detect_build
from engine.model import LoadOptions, LocalModel, load_model
from engine.prompt_speed import GPU_DEFAULT_TOKENS_PER_S, PromptSpeed
from engine.server_model import ServerModel
from engine.turn import ChatSession, TurnBudget, TurnRequest
from retrieval.quiet_import import quiet_imports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSummary:
    """What the GUI shows about the loaded model."""

    path: Path
    name: str
    architecture: str
    quantization: str
    context_tokens: int
    backend_label: str
    notes: tuple[str, ...] = field(default=())
    # Where answers are computed: None here, else the server ("URL (model)").
    server: str | None = None

    @classmethod
    def of(cls, model: LocalModel | ServerModel) -> ModelSummary:
        if isinstance(model, ServerModel):
            return cls(
                path=Path(),
                name=model.address.model,
                architecture=model.info.kind,
                quantization="",
                context_tokens=model.context_tokens,
                backend_label=f"Answers computed on {model.label}",
                notes=model.notes,
                server=model.label,
            )
        return cls(
            path=model.info.path,
            name=model.info.display_name,
            architecture=model.info.architecture,
            quantization=model.info.quantization,
            context_tokens=model.context_tokens,
            backend_label=model.backend_label,
            notes=model.notes,
        )


@dataclass(frozen=True)
class TurnJob:
    turn_id: int
    request: TurnRequest
    cancel: threading.Event
    context_source: ContextSource | None = None
    budget: TurnBudget | None = None


@dataclass(frozen=True)
class ReadAheadJob:
    request: TurnRequest
    cancel: threading.Event
    context_source: ContextSource
    budget: TurnBudget | None = None
    number: int = 0  # later jobs supersede it while it waits
    # Set when a later job is queued: this one stops after its batch in progress.
    superseded: threading.Event = field(default_factory=threading.Event)


def speed_key(path: str | Path) -> str:
    """How a model file is named in ``Settings.prompt_speeds``."""
    return str(Path(path))


def server_speed_key(label: str) -> str:
    """How a served model is named in ``Settings.prompt_speeds``."""
    return f"server: {label}"


class EngineWorker(QObject):
    """Lives on the engine thread. Slots run there, one at a time."""

    model_loading = Signal(str)  # path
    model_loaded = Signal(object)  # ModelSummary
    model_failed = Signal(object)  # EngineError
    model_unloaded = Signal()  # the model in use was freed (a new one is coming, or failed)
    turn_event = Signal(int, object)  # turn id, engine event
    devices_found = Signal(object)  # tuple[ComputeDevice, ...]: the build's GPUs
    # Model file, PromptSpeed.to_dict(): after a load and after each turn that
    # learnt something, so the app can save it with the settings.
    prompt_speed_changed = Signal(str, object)
    read_ahead_done = Signal(int)  # tokens of the next prompt now in the KV cache

    def __init__(self) -> None:
        super().__init__()
        self._model: LocalModel | ServerModel | None = None
        self._session: ChatSession | None = None
        # With a model server: names the turn's sources in its ledger entries.
        self._recorder: ServerLedger | None = None
        # Set from the GUI thread (an int: atomic): the newest read-ahead queued.
        self.newest_read_ahead = 0
        # One estimate per model file for this run, so the previous model's
        # quiet reload (after a failed load) keeps what it had learnt.
        self._speeds: dict[str, PromptSpeed] = {}

    @Slot()
    def probe_devices(self) -> None:
        """Ask llama.cpp for its GPUs and their free memory. It starts GPU
        drivers (a CUDA context takes a noticeable moment), so it runs here,
        before the first model is loaded, and never on the GUI thread."""
        try:
            # llama_cpp's import (numpy with it) takes its turn with the
            # document backends' imports on other threads: two threads
            # importing numpy at once left it half-made (ImportError here,
            # RecursionError in the embedder's import, the window saying the
            # embedding model could not be loaded). See retrieval.quiet_import.
            with quiet_imports():
                gpus = detect_build().gpus
        except Exception:
            log.exception("could not list the GPUs")
            gpus = ()
        self.devices_found.emit(gpus)

    @Slot(str, object, object)
    def load(self, path: str, options: LoadOptions, saved_speed: object = None) -> None:
        """``saved_speed``: the PromptSpeed.to_dict() the settings hold for
        this file, or None."""
        self.model_loading.emit(path)
        try:
            # Validate first (cheap): a bad file must not unload a good model.
            inspect_gguf(path)
            previous = self._model.info.path if isinstance(self._model, LocalModel) else None
            self._unload()
            try:
                model = load_model(path, options)
            except EngineError:
                if previous is not None:
                    self._reload_quietly(previous, options)
                raise
        except EngineError as exc:
            log.warning("model load failed: %s | %s", exc, exc.detail)
            self.model_failed.emit(exc)
            return
        except Exception as exc:
            log.exception("unexpected failure loading %s", path)
            self.model_failed.emit(
                ModelLoadFailed(f"Footnote could not load {Path(path).name}.", detail=repr(exc))
            )
            return
        self._model = model
        self._start_session(model, saved_speed)
        self.model_loaded.emit(ModelSummary.of(model))

    @Slot(object, str, object)
    def use_server(self, choice: ServerChoice, data_dir: str, api_key: object = None) -> None:
        """Answers from now on computed on ``choice``; the model here is freed
        once the server has answered (a server that cannot be reached leaves
        the current model in use)."""
        self.model_loading.emit(choice.label)
        try:
            key = api_key if isinstance(api_key, str) else None
            served, recorder = connect_server(choice, Path(data_dir), api_key=key)
        except EngineError as exc:
            log.warning("model server %s failed: %s | %s", choice.label, exc, exc.detail)
            self.model_failed.emit(exc)
            return
        except Exception as exc:
            log.exception("unexpected failure connecting to %s", choice.label)
            self.model_failed.emit(
                ModelLoadFailed(
                    f"Footnote could not use the model server {choice.label}.", detail=repr(exc)
                )
            )
            return
        self._unload()
        self._model, self._recorder = served, recorder
        self._start_session(served, None)
        self.model_loaded.emit(ModelSummary.of(served))

    @Slot(object)
    def run_turn(self, job: TurnJob) -> None:
        if self._session is None:
            self.turn_event.emit(
                job.turn_id,
                Failed(
                    ModelLoadFailed(
                        "No model is loaded. Open a GGUF model file first (File → Open Model…)."
                    )
                ),
            )
            return
        session = self._session
        samples = list(session.prompt_speed.samples)
        try:
            for event in session.run(
                job.request, job.cancel, job.context_source, budget=job.budget
            ):
                if isinstance(event, Sources) and self._recorder is not None:
                    # Before the prompt goes: its ledger entry names them.
                    self._recorder.sources = tuple(event.passages)
                if isinstance(event, Finished) and session.prompt_speed.samples != samples:
                    # Before Finished, so the speed is saved when the answer is.
                    self._say_speed(session)
                self.turn_event.emit(job.turn_id, event)
        except Exception as exc:
            log.exception("turn %s crashed", job.turn_id)
            self.turn_event.emit(
                job.turn_id,
                Failed(
                    GenerationFailed(
                        "Something went wrong while writing the answer. Try again; the log "
                        "folder has details.",
                        detail=repr(exc),
                    )
                ),
            )

    @Slot(object)
    def run_read_ahead(self, job: ReadAheadJob) -> None:
        """Read the next prompt's sources while the user types (see
        ChatSession.read_ahead); a turn queued behind it cancels it."""
        if self._session is None or job.cancel.is_set() or job.number < self.newest_read_ahead:
            log.debug(
                "read-ahead %d skipped (session %s, cancelled %s, newest %d)",
                job.number,
                self._session is not None,
                job.cancel.is_set(),
                self.newest_read_ahead,
            )
            return  # stopped, or a newer one waits behind it
        try:
            tokens = self._session.read_ahead(
                job.request,
                job.cancel,
                job.context_source,
                budget=job.budget,
                superseded=job.superseded,
            )
        except Exception:
            log.exception("reading ahead failed")  # costs the speed-up, not the turn
            return
        self.read_ahead_done.emit(tokens)

    def _start_session(self, model: LocalModel | ServerModel, saved_speed: object) -> None:
        """One ChatSession per loaded model, with this file's prompt speed:
        learnt in this run, else saved in the settings, else a guess from the
        model's size (the guess always follows the current threads/GPU)."""
        if isinstance(model, ServerModel):
            key, guess = server_speed_key(model.label), GPU_DEFAULT_TOKENS_PER_S
        else:
            key = speed_key(model.info.path)
            guess = PromptSpeed.for_model(model).default_tokens_per_s
        speed = self._speeds.get(key)
        if speed is not None:
            speed.default_tokens_per_s = guess
        elif isinstance(saved_speed, Mapping):
            speed = PromptSpeed.from_dict(saved_speed, default_tokens_per_s=guess)
        else:
            speed = PromptSpeed(default_tokens_per_s=guess)
        self._speeds[key] = speed
        self._session = ChatSession(model, speed)
        self._say_speed(self._session)

    def _say_speed(self, session: ChatSession) -> None:
        model = session.model
        key = (
            server_speed_key(model.label)
            if isinstance(model, ServerModel)
            else speed_key(model.info.path)
        )
        self.prompt_speed_changed.emit(key, session.prompt_speed.to_dict())

    def close(self) -> None:
        """Free the model. Call only once the engine thread has stopped."""
        self._unload()

    def _unload(self) -> None:
        if self._model is not None:
            self._model.close()
            # Said at once: if the new model and the quiet reload of this one
            # both fail, the GUI must not go on believing this one is loaded.
            self.model_unloaded.emit()
        self._model = None
        self._session = None
        self._recorder = None

    def _reload_quietly(self, path: Path, options: LoadOptions) -> None:
        try:
            self._model = load_model(path, options)
            self._start_session(self._model, None)
            self.model_loaded.emit(ModelSummary.of(self._model))
        except EngineError:
            log.exception("could not reload the previous model %s", path)


class EngineController(QObject):
    """The GUI-thread handle on the engine thread."""

    model_loading = Signal(str)
    model_loaded = Signal(object)
    model_failed = Signal(object)
    model_unloaded = Signal()
    turn_event = Signal(int, object)
    devices_found = Signal(object)
    prompt_speed_changed = Signal(str, object)  # model file, PromptSpeed.to_dict()
    read_ahead_done = Signal(int)

    _request_probe = Signal()
    _request_load = Signal(str, object, object)
    _request_server = Signal(object, str, object)
    _request_turn = Signal(object)
    _request_read_ahead = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("footnote-engine")
        self._worker = EngineWorker()
        self._worker.moveToThread(self._thread)
        self._request_probe.connect(self._worker.probe_devices)
        self._request_load.connect(self._worker.load)
        self._request_server.connect(self._worker.use_server)
        self._request_turn.connect(self._worker.run_turn)
        self._request_read_ahead.connect(self._worker.run_read_ahead)
        self._worker.read_ahead_done.connect(self.read_ahead_done)
        self._worker.model_loading.connect(self.model_loading)
        self._worker.model_loaded.connect(self._on_loaded)
        self._worker.model_failed.connect(self.model_failed)
        self._worker.model_unloaded.connect(self._on_unloaded)
        self._worker.turn_event.connect(self._on_turn_event)
        self._worker.devices_found.connect(self._on_devices_found)
        self._worker.prompt_speed_changed.connect(self._on_prompt_speed)
        self._ids = itertools.count(1)
        self._pending: dict[int, threading.Event] = {}
        self._read_ahead_cancel = threading.Event()
        self._read_ahead_job: ReadAheadJob | None = None  # the newest queued
        self.model: ModelSummary | None = None
        # The model that was unloaded for a new one, until a model is loaded
        # again: lets a failure say that the previous one is gone too.
        self.lost_model: ModelSummary | None = None
        # The build's GPUs as found at startup, before any model took their
        # memory; None until the engine thread has looked.
        self.gpus: tuple[ComputeDevice, ...] | None = None
        # PromptSpeed.to_dict() per model file (speed_key): what a load
        # starts from. The app points this at its settings' dict.
        self.saved_prompt_speeds: dict[str, Any] = {}
        # The loaded model's prompt speed as last reported (tokens/s, and
        # whether it was measured on this machine or is still a guess).
        self.prompt_tokens_per_s: float | None = None
        self.prompt_speed_measured = False
        self._thread.start()
        self._request_probe.emit()

    def load_model(self, path: str | Path, options: LoadOptions) -> None:
        saved = self.saved_prompt_speeds.get(speed_key(path))
        self._request_load.emit(str(path), options, dict(saved) if saved else None)

    def use_server(self, choice: ServerChoice, data_dir: Path, api_key: str | None) -> None:
        """Compute answers on a model server (``api_key`` None: the keyring's)."""
        self._request_server.emit(choice, str(data_dir), api_key)

    def start_turn(
        self,
        request: TurnRequest,
        context_source: ContextSource | None = None,
        budget: TurnBudget | None = None,
    ) -> int:
        """Queue a turn; ``context_source`` supplies its passages, ``budget``
        the first-word target they must fit (see ChatSession.run)."""
        self.cancel_read_ahead()  # the turn must not wait for it
        turn_id = next(self._ids)
        cancel = threading.Event()
        self._pending[turn_id] = cancel
        self._request_turn.emit(TurnJob(turn_id, request, cancel, context_source, budget))
        return turn_id

    def read_ahead(
        self,
        request: TurnRequest,
        context_source: ContextSource,
        budget: TurnBudget | None = None,
    ) -> None:
        """Queue a read-ahead of the prompt for ``request`` (the text typed
        so far). One already running stops at the end of its prompt batch
        (what it read stays cached for this one); of those waiting, only
        this newest runs."""
        number = next(self._ids)
        self._worker.newest_read_ahead = number
        if self._read_ahead_job is not None:
            self._read_ahead_job.superseded.set()
        self._read_ahead_job = ReadAheadJob(
            request, self._read_ahead_cancel, context_source, budget, number
        )
        self._request_read_ahead.emit(self._read_ahead_job)

    def cancel_read_ahead(self) -> None:
        """Stop reading ahead (Enter: the turn is next); what was read stays cached."""
        self._read_ahead_cancel.set()
        self._read_ahead_cancel = threading.Event()

    def cancel(self, turn_id: int | None = None) -> None:
        """Stop one turn, or every running and queued turn."""
        for tid, event in self._pending.items():
            if turn_id is None or tid == turn_id:
                event.set()

    def shutdown(self, say: Callable[[str], None] = log.info) -> None:
        """Cancel, stop the thread, then free the model, in that order.

        Never returns while the thread runs: destroying a running QThread
        aborts the process, and freeing the model under a running batch would
        crash it. A model load cannot be interrupted, so this may take a while;
        ``say`` tells the user what it is waiting for."""
        self.cancel()
        self.cancel_read_ahead()
        self._thread.quit()
        wait_visibly(self._thread.wait, say, "Finishing the model's work before closing…")
        self._worker.close()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    @Slot(object)
    def _on_loaded(self, summary: ModelSummary) -> None:
        self.model = summary
        self.lost_model = None
        self.model_loaded.emit(summary)

    @Slot()
    def _on_unloaded(self) -> None:
        if self.model is not None:
            self.lost_model = self.model
        self.model = None
        self.model_unloaded.emit()

    @Slot(str, object)
    def _on_prompt_speed(self, path: str, data: Mapping[str, Any]) -> None:
        self.saved_prompt_speeds[path] = dict(data)
        speed = PromptSpeed.from_dict(data)
        self.prompt_tokens_per_s = speed.tokens_per_s
        self.prompt_speed_measured = speed.measured
        self.prompt_speed_changed.emit(path, dict(data))

    @Slot(object)
    def _on_devices_found(self, gpus: tuple[ComputeDevice, ...]) -> None:
        self.gpus = gpus
        self.devices_found.emit(gpus)

    @Slot(int, object)
    def _on_turn_event(self, turn_id: int, event: object) -> None:
        if isinstance(event, (Finished, Failed)):
            self._pending.pop(turn_id, None)
        self.turn_event.emit(turn_id, event)
