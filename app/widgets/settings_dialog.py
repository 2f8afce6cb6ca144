"""Settings: theme, model (a file here, or a model server), context size,
threads, KV cache, GPU layers, temperature, system prompt, answer speed (the
first-word target) and web search."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import DEFAULT_SYSTEM_PROMPT, Settings
from app.style.colors import THEME_LABELS, parse_choice
from engine.budget import FirstWordTarget
from engine.devices import ComputeDevice
from engine.hardware import physical_cores

GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"
SAFESEARCH_LABELS = {"off": "Off", "moderate": "Moderate", "strict": "Strict"}


def speed_explanation(tokens_per_s: float | None, measured: bool, target: FirstWordTarget) -> str:
    """ "this computer reads ~20 tokens/s: Balanced ≈ 500 tokens of sources"."""
    if not tokens_per_s:
        return "Load a model to see how much each choice reads on this computer."
    rate = f"~{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"~{tokens_per_s:.1f}"
    tokens = target.seconds * tokens_per_s
    rounded = int(round(tokens, -1 if tokens < 1000 else -2))
    how = "reads" if measured else "should read (an estimate until the first long answer)"
    return (
        f"This computer {how} {rate} tokens/s: {target.name.capitalize()} ≈ {rounded:,} tokens "
        f"of sources before the first word (about {target.seconds:.0f} s)."
    )


class SettingsDialog(QDialog):
    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        gpus: Sequence[ComputeDevice] = (),
        prompt_tokens_per_s: float | None = None,
        prompt_speed_measured: bool = False,
        has_saved_key: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        form = QFormLayout()

        self.theme = QComboBox()
        for choice, label in THEME_LABELS.items():
            self.theme.addItem(label, choice.value)
        self.theme.setCurrentIndex(max(self.theme.findData(parse_choice(settings.theme).value), 0))
        self.theme.setToolTip(
            "Light or dark; “Follow the system” switches with your desktop's setting."
        )
        form.addRow("&Theme", self.theme)

        self.model_path = QLineEdit(settings.model_path)
        self.model_path.setPlaceholderText("No model chosen")
        self.model_path.setAccessibleName("Model file")
        browse = QPushButton("Browse…")
        browse.setAccessibleName("Browse for a model file")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        form.addRow("Model file", row)
        self._add_server_rows(form, settings, has_saved_key)

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

        self.answer_speed = QComboBox()
        for target in FirstWordTarget:
            self.answer_speed.addItem(
                f"{target.name.capitalize()} (first word within ~{target.seconds:.0f} s)",
                target.value,
            )
        self.answer_speed.setCurrentIndex(max(self.answer_speed.findData(settings.answer_speed), 0))
        self.answer_speed.setToolTip(
            "How long you are willing to wait for the first word of a cited answer: "
            "a longer wait lets the model read more of your documents and web pages."
        )
        self.speed_note = QLabel()
        self.speed_note.setWordWrap(True)
        self.speed_note.setObjectName("welcomeHint")
        self._speed = (prompt_tokens_per_s, prompt_speed_measured)
        self.answer_speed.currentIndexChanged.connect(self._explain_speed)
        self._explain_speed()
        form.addRow("Answer speed", self.answer_speed)
        form.addRow("", self.speed_note)

        self.searxng_url = QLineEdit(settings.web_searxng_url)
        self.searxng_url.setPlaceholderText("optional, e.g. https://searx.example.org")
        self.searxng_url.setToolTip(
            "A SearXNG instance to search with first (DuckDuckGo is the fallback). "
            "Leave empty to use DuckDuckGo."
        )
        form.addRow("SearXNG URL", self.searxng_url)
        self.region = QLineEdit(settings.web_region)
        self.region.setPlaceholderText("wt-wt (no region)")
        self.region.setToolTip("Search region, as DuckDuckGo names them: us-en, de-de, fr-fr…")
        form.addRow("Search region", self.region)
        self.safesearch = QComboBox()
        for value, label in SAFESEARCH_LABELS.items():
            self.safesearch.addItem(label, value)
        self.safesearch.setCurrentIndex(max(self.safesearch.findData(settings.web_safesearch), 0))
        form.addRow("Safe search", self.safesearch)
        self.allow_local_fetch = QCheckBox("Allow fetching local/intranet addresses")
        self.allow_local_fetch.setChecked(settings.web_allow_local_fetch)
        self.allow_local_fetch.setToolTip(
            "Off: a search result pointing at this computer or your local network (a router, "
            "an intranet page) is never fetched, so a web page cannot make Footnote probe it."
        )
        form.addRow("", self.allow_local_fetch)
        layout.addLayout(form)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def apply_to(self, settings: Settings) -> None:
        settings.theme = str(self.theme.currentData())
        settings.context_tokens = self.context.value()
        settings.threads = self.threads.value()
        settings.temperature = round(self.temperature.value(), 2)
        settings.kv_cache_8bit = self.kv_cache_8bit.isChecked()
        settings.gpu_layers = self.gpu_layers.value()
        settings.system_prompt = self.system_prompt.toPlainText().strip()
        settings.answer_speed = str(self.answer_speed.currentData())
        settings.web_searxng_url = self.searxng_url.text().strip()
        settings.web_region = self.region.text().strip() or "wt-wt"
        settings.web_safesearch = str(self.safesearch.currentData())
        settings.web_allow_local_fetch = self.allow_local_fetch.isChecked()
        if self.model_path.text().strip():
            settings.model_path = self.model_path.text().strip()
        settings.model_server_url = self.server_url.text().strip()
        settings.model_server_model = self.server_model.text().strip()
        settings.use_model_server = (
            self.use_server.isChecked()
            and bool(settings.model_server_url)
            and bool(settings.model_server_model)
        )

    def _add_server_rows(self, form: QFormLayout, settings: Settings, has_saved_key: bool) -> None:
        """Settings → "Use a model server": its address, the model's
        name there, and an API key that goes to the system keyring."""
        self.use_server = QCheckBox("Use a model server (answers are computed there)")
        self.use_server.setChecked(settings.use_model_server)
        self.use_server.setToolTip(
            "For models this computer cannot run (Phi-3-small) or a team's GPU server: an "
            "OpenAI-compatible API such as vLLM, llama.cpp's llama-server or Ollama. Each "
            "turn's conversation and sources are sent to it, and the privacy ledger lists "
            "every send."
        )
        form.addRow("", self.use_server)
        self.server_url = QLineEdit(settings.model_server_url)
        self.server_url.setPlaceholderText("e.g. http://gpu-box:8000")
        self.server_url.setAccessibleName("Model server address")
        form.addRow("Server address", self.server_url)
        self.server_model = QLineEdit(settings.model_server_model)
        self.server_model.setPlaceholderText("the model's name on the server, e.g. phi3-small")
        self.server_model.setAccessibleName("Model name on the server")
        form.addRow("Model name", self.server_model)
        self.server_key = QLineEdit()
        self.server_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_key.setAccessibleName("Model server API key")
        self.server_key.setPlaceholderText(
            "saved in the system keyring; type to replace"
            if has_saved_key
            else "optional; kept in the system keyring, never in the settings file"
        )
        form.addRow("API key", self.server_key)
        self.use_server.toggled.connect(self._enable_server_rows)
        self._enable_server_rows(self.use_server.isChecked())

    def _enable_server_rows(self, on: bool) -> None:
        for field in (self.server_url, self.server_model, self.server_key):
            field.setEnabled(on)

    @property
    def api_key(self) -> str:
        """The key typed in this time ("": keep the saved one)."""
        return self.server_key.text().strip()

    def _explain_speed(self) -> None:
        target = FirstWordTarget(self.answer_speed.currentData())
        self.speed_note.setText(speed_explanation(*self._speed, target))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", GGUF_FILTER)
        if path:
            self.model_path.setText(path)
