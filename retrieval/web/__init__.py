"""Web search for grounding answers: providers, a privacy ledger, a guarded
fetcher, main-text extraction and embedding-based ranking, composed by
:class:`retrieval.web.pipeline.WebSearch`.

Qt-free and engine-free. Heavy or network-bound imports (ddgs, trafilatura,
pypdfium2, numpy) happen inside the functions that need them. One small module
per stage, in pipeline order: ``need_search`` → ``resilient_search``
(``ddgs_provider``, ``searxng_provider``, ``result_cache``) → ``fetcher``
(``address_guard``, ``http_fetch``) → ``extraction`` (PDFs through
``retrieval.parsing``) → ``ranking`` (``retrieval.chunking`` and the documents'
embedder); every query and URL is written to the ``ledger`` before it leaves
the machine, and nothing is sent when the ledger cannot be written.
"""
