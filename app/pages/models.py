"""The Models page: what is installed (use, delete) and what can be downloaded
(with what it needs, whether it fits, progress, speed, time left, cancel).

Every text on it wraps (file paths too, at their slashes), so the page fits
any width the window gives it and never scrolls sideways."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.widgets.page_header import add_page_header
from engine.catalog import CatalogEntry, recommend
from engine.download import DownloadProgress
from engine.hardware import MemoryBudget
from engine.library import InstalledModel

# A zero-width space: lets a long path wrap after each "/" (QLabel wraps at spaces only).
WRAP_OPPORTUNITY = "\u200b"


def wrappable(text: str) -> str:
    """``text`` with a break opportunity after each path separator."""
    return text.replace("/", "/" + WRAP_OPPORTUNITY).replace("\\", "\\" + WRAP_OPPORTUNITY)


def _wrapping(label: QLabel) -> QLabel:
    """A label that wraps and asks for no width of its own: the row decides."""
    label.setWordWrap(True)
    label.setMinimumWidth(1)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def human_size(n_bytes: float) -> str:
    """Decimal units, as model hosts and disk tools show them."""
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.0f} MB"


def progress_text(p: DownloadProgress) -> str:
    parts = [f"{human_size(p.done_bytes)} of {human_size(p.total_bytes or 0)}"]
    if p.bytes_per_second:
        parts.append(f"{p.bytes_per_second / 1e6:.1f} MB/s")
    if p.eta_seconds is not None:
        minutes, seconds = divmod(int(p.eta_seconds), 60)
        parts.append(f"{minutes} min {seconds:02d} s left" if minutes else f"{seconds} s left")
    return " · ".join(parts)


class CatalogRow(QFrame):
    download_requested = Signal(object)  # CatalogEntry
    cancel_requested = Signal(str)  # entry id

    def __init__(self, entry: CatalogEntry) -> None:
        super().__init__()
        self.entry = entry
        self.setObjectName("modelRow")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        top = QHBoxLayout()
        self.title = _wrapping(QLabel(entry.name))
        self.title.setObjectName("modelTitle")
        top.addWidget(self.title, 1)
        self.button = QPushButton("Download")
        self.button.setObjectName("secondaryButton")
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.setAccessibleName(f"Download {entry.name}")
        self.button.clicked.connect(self._on_button)
        top.addWidget(self.button)
        layout.addLayout(top)
        self.info = _wrapping(QLabel())
        self.info.setObjectName("modelDetail")
        layout.addWidget(self.info)
        self.progress = _thin_progress_bar()
        self.progress.hide()
        layout.addWidget(self.progress)
        self.status = _wrapping(QLabel())
        self.status.setObjectName("modelDetail")
        self.status.hide()
        layout.addWidget(self.status)
        self._downloading = False

    def set_budget(self, budget: MemoryBudget, recommended: bool) -> None:
        """What it needs against what this machine has free (updated in place, so
        a download's progress or last message survives a refresh)."""
        entry = self.entry
        self.title.setText(("★ " if recommended else "") + entry.name)
        self.button.setObjectName("primaryButton" if recommended else "secondaryButton")
        # The stylesheet keys on the object name: re-apply it.
        self.button.style().unpolish(self.button)
        self.button.style().polish(self.button)
        needs = human_size(entry.memory_needed_bytes())
        where = entry.placement_text(budget)
        where = f", {where}" if where else ""
        detail = (
            f"{entry.parameters} parameters · {human_size(entry.size_bytes)} download · "
            f"needs about {needs} of memory{where} · {entry.native_context:,}-token context · "
            f"{entry.license} · {entry.publisher}"
        )
        fits = entry.fits(budget.total_bytes)
        self.info.setText(detail if fits else detail + " · <b>more memory than is free now</b>")

    def show_progress(self, p: DownloadProgress) -> None:
        self._downloading = True
        self.button.setText("Cancel")
        self.button.setAccessibleName(f"Cancel downloading {self.entry.name}")
        self.progress.show()
        self.progress.setValue(int(1000 * (p.fraction or 0)))
        self.status.setText(progress_text(p))
        self.status.show()

    def show_state(self, text: str) -> None:
        self._downloading = False
        self.button.setText("Download")
        self.button.setAccessibleName(f"Download {self.entry.name}")
        self.progress.hide()
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def start(self) -> None:
        self._downloading = True
        self.button.setText("Cancel")
        self.button.setAccessibleName(f"Cancel downloading {self.entry.name}")
        self.status.setText("Connecting…")
        self.status.show()

    def _on_button(self) -> None:
        if self._downloading:
            self.cancel_requested.emit(self.entry.id)
        else:
            self.download_requested.emit(self.entry)


class InstalledRow(QFrame):
    use_requested = Signal(str)
    delete_requested = Signal(str)

    def __init__(self, model: InstalledModel, in_use: bool, own_file: bool) -> None:
        super().__init__()
        self.model = model
        self.setObjectName("modelRow")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        text = QVBoxLayout()
        name = _wrapping(QLabel(wrappable(model.path.name)))
        name.setObjectName("modelTitle")
        text.addWidget(name)
        if model.info is not None:
            detail = (
                f"{model.info.architecture} · {model.info.quantization} · "
                f"{human_size(model.size_bytes)} · {model.info.context_length:,}-token context"
            )
        else:
            detail = f"Cannot be used: {model.problem}"
        if not own_file:
            detail += f" · in {model.path.parent}"
        info = _wrapping(QLabel(wrappable(detail)))
        info.setObjectName("modelDetail")
        text.addWidget(info)
        layout.addLayout(text, 1)
        self.use_button = QPushButton("In use" if in_use else "Use")
        self.use_button.setObjectName("secondaryButton")
        self.use_button.setEnabled(not in_use and model.info is not None)
        self.use_button.setAccessibleName(f"Use {model.path.name}")
        self.use_button.clicked.connect(lambda: self.use_requested.emit(str(model.path)))
        layout.addWidget(self.use_button)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("secondaryButton")
        # Files outside Footnote's models folder are the user's: never deleted here.
        self.delete_button.setVisible(own_file)
        self.delete_button.setAccessibleName(f"Delete {model.path.name}")
        self.delete_button.setEnabled(not in_use)
        self.delete_button.setToolTip("Switch to another model first" if in_use else "")
        self.delete_button.clicked.connect(lambda: self.delete_requested.emit(str(model.path)))
        layout.addWidget(self.delete_button)


class ConversionRow(QFrame):
    """Shows the one conversion that can run at a time."""

    cancel_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("modelRow")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        top = QHBoxLayout()
        self.title = _wrapping(QLabel())
        self.title.setObjectName("modelTitle")
        top.addWidget(self.title, 1)
        self.button = QPushButton("Cancel")
        self.button.setObjectName("secondaryButton")
        self.button.clicked.connect(self.cancel_requested)
        top.addWidget(self.button)
        layout.addLayout(top)
        self.progress = _thin_progress_bar()
        layout.addWidget(self.progress)
        self.status = _wrapping(QLabel())
        self.status.setObjectName("modelDetail")
        layout.addWidget(self.status)
        self.hide()

    def start(self, title: str) -> None:
        self.title.setText(title)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Reading the checkpoint…")
        self.button.show()
        self.show()

    def update_progress(self, stage: str, done: int, total: int) -> None:
        fraction = done / max(total, 1)
        # Writing the GGUF is most of the work; quantizing is the rest.
        overall = 0.7 * fraction if stage == "Writing GGUF" else 0.7 + 0.3 * fraction
        self.progress.setValue(int(1000 * overall))
        detail = f"{done} of {total} tensors" if stage == "Writing GGUF" else "llama.cpp quantizer"
        self.status.setText(f"{stage}: {detail}")

    def finish(self, text: str) -> None:
        self.progress.hide()
        self.button.hide()
        self.status.setText(text)


class ModelManagerPage(QWidget):
    back_requested = Signal()
    convert_requested = Signal()
    cancel_conversion = Signal()
    use_requested = Signal(str)
    delete_requested = Signal(str)
    download_requested = Signal(object)
    cancel_requested = Signal(str)

    def __init__(self, catalog: list[CatalogEntry], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.catalog = catalog
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # Everything wraps, so the page follows the window's width.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area = scroll
        scroll.setAccessibleName("Models")
        canvas = QWidget()
        canvas.setObjectName("chatCanvas")
        self._layout = QVBoxLayout(canvas)
        self._layout.setContentsMargins(32, 20, 32, 24)
        self._layout.setSpacing(10)
        scroll.setWidget(canvas)
        outer.addWidget(scroll)

        convert = QPushButton("Convert a Hugging Face folder…")
        convert.setObjectName("secondaryButton")
        convert.setToolTip(
            "Turn Phi-3 safetensors weights (yours or fine-tuned) into a 4-bit GGUF with llama.cpp"
        )
        convert.clicked.connect(self.convert_requested)
        add_page_header(self._layout, "Models", self.back_requested, actions=[convert])
        self.conversion = ConversionRow()
        self.conversion.cancel_requested.connect(self.cancel_conversion)
        self._layout.addWidget(self.conversion)

        self._installed_title = QLabel("On this computer")
        self._installed_title.setObjectName("sectionTitle")
        self._layout.addWidget(self._installed_title)
        self._installed_box = QVBoxLayout()
        self._layout.addLayout(self._installed_box)

        self._catalog_title = QLabel("Download")
        self._catalog_title.setObjectName("sectionTitle")
        self._layout.addWidget(self._catalog_title)
        self.free_memory = _wrapping(QLabel())
        self.free_memory.setObjectName("modelDetail")
        self._layout.addWidget(self.free_memory)
        self._catalog_box = QVBoxLayout()
        self._layout.addLayout(self._catalog_box)
        self._layout.addStretch(1)
        # One row per catalog entry for the page's lifetime: downloads report
        # to them whether or not the page is showing.
        self.rows: dict[str, CatalogRow] = {}
        for entry in self.catalog:
            row = CatalogRow(entry)
            row.download_requested.connect(self.download_requested)
            row.cancel_requested.connect(self.cancel_requested)
            self._catalog_box.addWidget(row)
            self.rows[entry.id] = row
        self.installed_rows: list[InstalledRow] = []

    def set_memory_budget(self, budget: MemoryBudget) -> None:
        best = recommend(self.catalog, budget.total_bytes)
        free = f"{human_size(budget.ram_bytes)} of memory free on this computer"
        if budget.gpu_bytes:
            free += f", and {human_size(budget.gpu_bytes)} on the GPU ({budget.gpu_name})"
        self.free_memory.setText(free + ".")
        for row in self.rows.values():
            row.set_budget(budget, row.entry is best)

    def set_installed(
        self, models: list[InstalledModel], in_use: Path | None, models_dir: Path
    ) -> None:
        _clear(self._installed_box)
        self.installed_rows = []
        if not models:
            empty = _wrapping(QLabel("No models yet. Download one below, or open a .gguf file."))
            empty.setObjectName("modelDetail")
            self._installed_box.addWidget(empty)
        for model in models:
            row = InstalledRow(
                model, in_use is not None and model.path == in_use, model.in_folder(models_dir)
            )
            row.use_requested.connect(self.use_requested)
            row.delete_requested.connect(self.delete_requested)
            self._installed_box.addWidget(row)
            self.installed_rows.append(row)


def _thin_progress_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 1000)  # per mille: smooth for multi-GB downloads
    bar.setTextVisible(False)
    bar.setFixedHeight(6)
    return bar


def _clear(layout: QVBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.deleteLater()
