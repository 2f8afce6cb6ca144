"""The models' work behind the window: loading the chosen model on the engine
thread, and the Models page's jobs (scan the folder, downloads, conversions,
delete, and recovering what a killed app left behind).

Every job runs through the window's :class:`~app.workers.jobs.JobRegistry`, so
closing the window cancels and joins it. Results arrive here on the GUI
thread and are turned into widget updates; nothing here blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QLabel, QStatusBar

from app.pages.models import ModelManagerPage, human_size
from app.pages.welcome import WelcomePage
from app.paths import AppPaths
from app.settings import Settings
from app.widgets.banner import Banner
from app.wiring.model_server import ServerChoice, key_name, server_choice
from app.workers.engine import EngineController, ModelSummary
from app.workers.jobs import JobRegistry
from engine.catalog import CatalogEntry, recommend
from engine.convert import (
    ConvertCancelled,
    ConvertDone,
    ConvertProgress,
    convert,
    remove_leftovers,
)
from engine.download import (
    DownloadCancelled,
    DownloadDone,
    DownloadProgress,
    download,
    part_path_for,
)
from engine.errors import EngineError
from engine.hardware import MemoryBudget, memory_budget
from engine.library import InstalledModel, delete_model, installed_models
from engine.model import LoadOptions
from engine.quantize import DEFAULT_QUANT
from engine.server_key import KeyringUnavailable, save_api_key

log = logging.getLogger(__name__)

NO_MODEL_TEXT = "No model loaded"
SCAN_JOB = "model-scan"
CONVERT_JOB = "convert"


def model_text(summary: ModelSummary) -> str:
    """The model in the status bar: its name and quantization, or where it runs."""
    if summary.server is not None:
        return f"{summary.name} · on a model server"
    return f"{summary.name} · {summary.quantization}"


def download_job_key(entry_id: str) -> str:
    return f"download:{entry_id}"


class ModelsController(QObject):
    model_state_changed = Signal()  # loaded, failed or unloaded: re-pick the home page
    models_page_requested = Signal()
    chat_page_requested = Signal()
    focus_requested = Signal()  # a model is ready: put the cursor in the composer

    def __init__(
        self,
        *,
        paths: AppPaths,
        settings: Settings,
        engine: EngineController,
        catalog: list[CatalogEntry],
        jobs: JobRegistry,
        page: ModelManagerPage,
        welcome: WelcomePage,
        banner: Banner,
        status: QStatusBar,
        model_label: QLabel,
        backend_label: QLabel,
        is_busy: Callable[[], bool],
        confirm: Callable[[str, str], bool],
        save_settings: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self.settings = settings
        self.engine = engine
        self.catalog = catalog
        self.jobs = jobs
        self.page = page
        self.welcome = welcome
        self.banner = banner
        self.status = status
        self.model_label = model_label
        self.backend_label = backend_label
        self._is_busy = is_busy
        self._confirm = confirm
        self._save_settings = save_settings
        self.loading_path: str | None = None
        # The banner text of the last failed load, which a later successful
        # load takes away (if the banner still shows it).
        self._load_failure: str | None = None
        self._rescan = False
        # A model server's key typed this session where no keyring keeps it.
        self._session_key: str | None = None

        engine.model_loading.connect(self._on_model_loading)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.model_failed.connect(self._on_model_failed)
        engine.devices_found.connect(self._on_devices_found)
        page.use_requested.connect(self.open_model)
        page.delete_requested.connect(self.delete_model_file)
        page.download_requested.connect(self.start_download)
        page.cancel_requested.connect(self.cancel_download)
        page.cancel_conversion.connect(self.cancel_conversion)
        welcome.recent_requested.connect(self.open_model)
        welcome.download_requested.connect(self.download_recommended)

    # ------------------------------------------------------------------ loading

    @property
    def has_model(self) -> bool:
        """A model is ready, or one is being loaded (a question can wait for it)."""
        return self.engine.model is not None or self.loading_path is not None

    @Slot(str)
    def open_model(self, path: str) -> None:
        if self._is_busy():
            self.banner.show_message(
                "Stop the current answer before switching models.", level="info"
            )
            return
        self.load(path)

    def use_settings(self) -> None:
        """The model the settings choose: the model server when it is on,
        else the model file (at start, and after Settings changed them)."""
        choice = server_choice(self.settings)
        if choice is not None:
            if self._is_busy():
                self.banner.show_message(
                    "Stop the current answer before switching models.", level="info"
                )
                return
            self.use_server(choice, self._session_key)
        elif self.settings.model_path:
            self.open_model(self.settings.model_path)

    def use_server(self, choice: ServerChoice, api_key: str | None = None) -> None:
        """Answers computed on a model server from now on (``api_key`` None:
        the keyring's)."""
        self.loading_path = choice.label
        self.engine.use_server(choice, self.paths.ensure().data, api_key)

    def remember_api_key(self, key: str) -> bool:
        """A key typed in Settings goes to the system keyring. Where there is
        none it is kept for this session only, never in the settings file,
        and the banner says so. False: no key was typed."""
        if not key:
            return False
        try:
            save_api_key(key_name(self.settings.model_server_url), key)
            self._session_key = None
        except KeyringUnavailable as exc:
            self._session_key = key
            self.banner.show_message(str(exc), level="info", details=exc.detail)
        return True

    def load(self, path: str) -> None:
        self.loading_path = path
        self.engine.load_model(
            path,
            LoadOptions(
                context_tokens=self.settings.context_tokens,
                threads=self.settings.threads or None,
                kv_cache_8bit=self.settings.kv_cache_8bit,
                gpu_layers=None if self.settings.gpu_layers < 0 else self.settings.gpu_layers,
            ),
        )

    @Slot(str)
    def _on_model_loading(self, path: str) -> None:
        served = "://" in path  # a server's label, not a file
        text = f"Connecting to {path}…" if served else f"Loading {Path(path).name}…"
        self.model_label.setText(text)
        self.welcome.set_status(text)
        self.status.showMessage(text)

    @Slot(object)
    def _on_model_loaded(self, summary: ModelSummary) -> None:
        self.loading_path = None
        path = str(summary.path)
        if summary.server is None and (
            path != self.settings.model_path or path not in self.settings.recent_models
        ):
            self.settings.remember_model(path)
        self._save_settings()
        self.model_label.setText(model_text(summary))
        # Always in view for a server: the conversation leaves the computer.
        where = f"Answers computed on {summary.server}" if summary.server else str(summary.path)
        self.model_label.setToolTip(where)
        self.backend_label.setText(f"{summary.backend_label} · {summary.context_tokens:,} ctx")
        # The fallback reasons stay a hover away after the banner is dismissed.
        self.backend_label.setToolTip("\n".join(summary.notes))
        self.status.showMessage("Model ready", 3000)
        self.welcome.set_status("")
        if summary.notes:
            self.banner.show_message(" ".join(summary.notes), level="info")
        elif self._load_failure is not None and self.banner.text() == self._load_failure:
            self.banner.hide()
        self._load_failure = None
        self.model_state_changed.emit()
        if self.page.isVisible():
            self.refresh_installed()  # move the "In use" mark
        self.focus_requested.emit()

    @Slot(object)
    def _on_model_failed(self, error: EngineError) -> None:
        failed = self.loading_path
        self.loading_path = None
        self.status.clearMessage()
        self.welcome.set_status("")
        current = self.engine.model
        message = str(error)
        if current is not None:
            self.model_label.setText(model_text(current))
            message += f" Still using {current.name}."
        else:
            self.model_label.setText(NO_MODEL_TEXT)
            self.model_label.setToolTip("")
            self.backend_label.setText("")
            if self.engine.lost_model is not None:
                message += (
                    f" {self.engine.lost_model.name} could not be loaded again either, so no "
                    "model is loaded now: open one with File → Open Model…"
                )
        self.banner.show_message(message, details=error.detail)
        self._load_failure = self.banner.message.text()
        log.info("model %s failed: %s", failed, error)
        self.model_state_changed.emit()

    # ------------------------------------------------------------------ the page

    def prepare_page(self) -> None:
        """Fresh memory figures and installed files for the Models page."""
        self.page.set_memory_budget(self.memory_budget())
        self.refresh_installed()

    def refresh_installed(self) -> None:
        """Read the models folder's headers off the GUI thread."""
        if self.jobs.closing:
            return
        if self.jobs.get(SCAN_JOB) is not None:
            self._rescan = True  # the folder may have changed since that scan began
            return
        self._rescan = False
        folder = self.paths.models
        recent = [Path(p) for p in self.settings.recent_models]
        job = self.jobs.add(
            SCAN_JOB,
            lambda _cancel: iter([installed_models(folder, recent)]),
            what="look at the models folder",
            finishing="Finishing a look at the models folder…",
        )
        job.yielded.connect(self._on_installed)
        job.failed.connect(self.banner.show_error)
        job.finished.connect(self._after_scan)
        job.start()

    @Slot()
    def _after_scan(self) -> None:
        if self._rescan:
            self.refresh_installed()

    @Slot(object)
    def _on_installed(self, models: list[InstalledModel]) -> None:
        in_use = self.engine.model.path if self.engine.model else None
        self.page.set_installed(models, in_use, self.paths.models)

    def memory_budget(self) -> MemoryBudget:
        """Free RAM now, plus the GPUs' free memory as found at startup."""
        return memory_budget(self.engine.gpus or ())

    def offer_download(self) -> None:
        offer = recommend(self.catalog, self.memory_budget().total_bytes)
        if offer is not None:
            self.welcome.offer_download(offer.name.split(" (")[0], human_size(offer.size_bytes))

    @Slot(object)
    def _on_devices_found(self, _gpus: object) -> None:
        # A GPU with its own memory can change what fits and what we recommend.
        budget = self.memory_budget()
        if budget.gpu_bytes:
            self.offer_download()
            self.page.set_memory_budget(budget)

    # ------------------------------------------------------------------ downloads

    @Slot()
    def download_recommended(self) -> None:
        best = recommend(self.catalog, self.memory_budget().total_bytes) or next(
            (e for e in self.catalog if e.default), None
        )
        self.models_page_requested.emit()
        if best is not None:
            self.start_download(best)

    @Slot(object)
    def start_download(self, entry: CatalogEntry) -> None:
        key = download_job_key(entry.id)
        if self.jobs.closing or self.jobs.get(key) is not None:
            return
        destination = self.paths.models / entry.file
        if destination.exists():
            self.open_model(str(destination))
            return
        job = self.jobs.add(
            key,
            lambda cancel: download(entry.url, destination, cancel, sha256=entry.sha256),
            what=f"download of {entry.name}",
            # The part file stays; the next start resumes it.
            finishing=f"Pausing the download of {entry.name}…",
        )
        job.yielded.connect(lambda event: self._on_download_event(entry, event))
        job.failed.connect(lambda error: self._on_download_failed(entry, error))
        row = self.page.rows.get(entry.id)
        if row is not None:
            row.start()
        job.start()

    @Slot(str)
    def cancel_download(self, entry_id: str) -> None:
        self.jobs.cancel(download_job_key(entry_id))

    def _on_download_event(self, entry: CatalogEntry, event: object) -> None:
        row = self.page.rows.get(entry.id)
        if isinstance(event, DownloadProgress):
            if row is not None:
                row.show_progress(event)
            percent = int(100 * (event.fraction or 0))
            self.status.showMessage(f"Downloading {entry.name}: {percent}%")
        elif isinstance(event, DownloadDone):
            if row is not None:
                row.show_state("Downloaded and verified.")
            self.status.showMessage(f"{entry.name} downloaded and verified", 5000)
            self.refresh_installed()
            self.open_model(str(event.path))
            self.chat_page_requested.emit()
        elif isinstance(event, DownloadCancelled):
            if row is not None:
                row.show_state("Paused. Download again to continue where it stopped.")
            self.status.clearMessage()

    def _on_download_failed(self, entry: CatalogEntry, error: EngineError) -> None:
        row = self.page.rows.get(entry.id)
        if row is not None:
            row.show_state(str(error))
        self.status.clearMessage()
        self.banner.show_error(error)

    def recover_interrupted_work(self) -> None:
        """After a crash or a kill: a download's .part resumes where it stopped;
        what a conversion or quantization left is deleted (it is never a model)."""
        for leftover in remove_leftovers(self.paths.models):
            log.info("removed %s, left by an interrupted conversion", leftover.name)
        for entry in self.catalog:
            if part_path_for(self.paths.models / entry.file).exists():
                self.status.showMessage(f"Resuming the download of {entry.name}…")
                self.start_download(entry)

    # ------------------------------------------------------------------ conversions

    @property
    def converting(self) -> bool:
        return self.jobs.get(CONVERT_JOB) is not None

    def convert_folder(self, folder: Path, quant: str = DEFAULT_QUANT) -> None:
        """Convert and quantize on a background thread; the result becomes the model."""
        if self.jobs.closing:
            return
        if self.converting:
            self.banner.show_message("One conversion at a time: wait for this one.", level="info")
            return
        output = self.paths.models / f"{folder.name}-{quant.upper()}.gguf"
        if output.exists():
            self.open_model(str(output))
            return
        self.models_page_requested.emit()
        self.page.conversion.start(f"Converting {folder.name} to {quant.upper()}")
        job = self.jobs.add(
            CONVERT_JOB,
            lambda cancel: convert(folder, output, cancel, quant=quant),
            what=f"conversion of {folder.name}",
            # Quantizing is one llama.cpp call that cannot be interrupted.
            finishing=f"Finishing the conversion of {folder.name}…",
        )
        job.yielded.connect(self._on_convert_event)
        job.failed.connect(self._on_convert_failed)
        job.start()

    @Slot()
    def cancel_conversion(self) -> None:
        self.jobs.cancel(CONVERT_JOB)

    @Slot(object)
    def _on_convert_event(self, event: object) -> None:
        row = self.page.conversion
        if isinstance(event, ConvertProgress):
            row.update_progress(event.stage, event.done, event.total)
        elif isinstance(event, ConvertDone):
            row.finish(f"Done: {event.path.name}")
            self.status.showMessage(f"{event.path.name} is ready", 5000)
            self.refresh_installed()
            self.open_model(str(event.path))
        elif isinstance(event, ConvertCancelled):
            row.finish("Conversion cancelled; nothing was written.")

    @Slot(object)
    def _on_convert_failed(self, error: EngineError) -> None:
        self.page.conversion.finish(str(error))
        self.banner.show_error(error)

    # ------------------------------------------------------------------ deleting

    @Slot(str)
    def delete_model_file(self, path: str) -> None:
        if self.engine.model is not None and str(self.engine.model.path) == path:
            self.banner.show_message(
                "Switch to another model before deleting this one.", level="info"
            )
            return
        if not self._confirm(
            "Delete model?", f"{Path(path).name} will be deleted from this computer."
        ):
            return
        self.banner.attempt(delete_model, Path(path), self.paths.models)
        if path in self.settings.recent_models and not Path(path).exists():
            self.settings.recent_models.remove(path)
            self._save_settings()
        self.refresh_installed()
