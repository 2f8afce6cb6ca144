"""Settings: model, context size, threads, KV cache, GPU layers, temperature, system prompt."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import DEFAULT_SYSTEM_PROMPT, Settings
from engine.devices import ComputeDevice
from engine.hardware import physical_cores

GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"


class SettingsDialog(QDialog):
    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        gpus: Sequence[ComputeDevice] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        form = QFormLayout()

        self.model_path = QLineEdit(settings.model_path)
        self.model_path.setPlaceholderText("No model chosen")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        form.addRow("Model file", row)

        self.context = QSpinBox()
        self.context.setRange(512, 131072)
        self.context.setSingleStep(512)
        self.context.setSuffix(" tokens")
        self.context.setValue(settings.context_tokens)
        self.context.setToolTip(
            "How much conversation the model can see at once. Phi-3-mini-4k: 4096. "
            "Each 1K tokens costs about 384 MiB of memory for Phi-3-mini."
        )
        form.addRow("Context size", self.context)

        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText(f"Automatic ({physical_cores()})")
        self.threads.setValue(settings.threads)
        form.addRow("CPU threads", self.threads)

        self.kv_cache_8bit = QCheckBox("Save memory: 8-bit KV cache (flash attention)")
        self.kv_cache_8bit.setChecked(settings.kv_cache_8bit)
        self.kv_cache_8bit.setToolTip(
            "Halves the memory each token of context needs, so long contexts fit on small "
            "machines; answers change very slightly."
        )
        form.addRow("", self.kv_cache_8bit)

        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("Automatic (what fits in free GPU memory)")
        self.gpu_layers.setSuffix(" layers")
        self.gpu_layers.setValue(settings.gpu_layers)
        if gpus:
            names = ", ".join(f"{gpu.description} ({gpu.backend})" for gpu in gpus)
            self.gpu_layers.setToolTip(
                f"Layers of the model to run on {names}; the rest run on the CPU. "
                "0 runs everything on the CPU and leaves the GPU free for other work."
            )
        else:
            self.gpu_layers.setEnabled(False)
            self.gpu_layers.setToolTip(
                "This copy of llama.cpp was built for the CPU only, or found no GPU. "
                "The README's “GPU builds” section says how to build it for CUDA, Metal "
                "or Vulkan."
            )
        form.addRow("GPU layers", self.gpu_layers)

        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.setValue(settings.temperature)
        self.temperature.setToolTip("Lower is more focused and repeatable; higher is more varied.")
        form.addRow("Temperature", self.temperature)

        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setMinimumHeight(90)
        reset = QPushButton("Reset to default")
        reset.clicked.connect(lambda: self.system_prompt.setPlainText(DEFAULT_SYSTEM_PROMPT))
        form.addRow("System prompt", self.system_prompt)
        form.addRow("", reset)
        layout.addLayout(form)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def apply_to(self, settings: Settings) -> None:
        settings.context_tokens = self.context.value()
        settings.threads = self.threads.value()
        settings.temperature = round(self.temperature.value(), 2)
        settings.kv_cache_8bit = self.kv_cache_8bit.isChecked()
        settings.gpu_layers = self.gpu_layers.value()
        settings.system_prompt = self.system_prompt.toPlainText().strip()
        if self.model_path.text().strip():
            settings.model_path = self.model_path.text().strip()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", GGUF_FILTER)
        if path:
            self.model_path.setText(path)
