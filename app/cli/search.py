"""``python -m app search QUERY``, started lean: a lookup answers in about a
second (bench/cli_search.py) instead of 11-16 s.

The full command line (``app.cli.commands``) imports the model engine, the web search
and the conversation store for its other commands: ~0.3 s idle and ~0.7 s
under load on the 2-core VM, none of it needed to look passages up. So
``app/__main__.py`` sends ``search`` here, which parses the same arguments
(``cli_documents.add_parsers``), runs the same ``cli_documents.run`` with the
same library and hybrid ranking, and fails the same way: one sentence on
stderr, the details in the log. The query itself is embedded with numpy
alone (``retrieval.embedding.QueryEmbedder``), so torch is never imported.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

# Everything this thread imports for a search is imported here, before the
# chromadb thread starts (main): two threads importing one module at once can
# hand one of them a half-made module (numpy was, in the window). numpy and
# tokenizers are what the query encoder imports lazily; chromadb imports
# numpy too.
import numpy  # noqa: F401
import tokenizers  # noqa: F401

from app.cli import documents as cli_documents
from app.cli.failures import run_reporting_failures
from app.logs import configure_logging
from app.paths import AppPaths
from retrieval import query_encoder  # noqa: F401
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Footnote: search the indexed documents.",
    )
    cli_documents.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def _import_vector_store() -> None:
    from retrieval import vector_index

    try:
        vector_index.import_backend()
    except Exception:  # the search's own open of the store says what failed
        log.info("importing the vector store's library failed", exc_info=True)


def main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    # chromadb's import is most of what is left (~1 s idle, 2 s under load):
    # it runs on its own thread while this one reads the collections, checks
    # the embedder's weights (hashlib frees the GIL) and embeds the query;
    # the store's open then finds it imported (quiet_imports: one at a time).
    importer = threading.Thread(target=_import_vector_store, name="import-chromadb", daemon=True)
    importer.start()
    try:
        return _run(argv, out or sys.stdout)
    finally:
        importer.join()  # never exit while it imports (usage errors, empty queries)


def _run(argv: Sequence[str], out: TextIO) -> int:
    args = build_parser().parse_args(argv)
    paths = AppPaths.from_environment()
    configure_logging(paths.log_file)
    return run_reporting_failures(
        args.command,
        lambda: cli_documents.run(args, paths, out),
        (RetrievalError,),
        data_dir=paths.data,
        log_file=paths.log_file,
    )
