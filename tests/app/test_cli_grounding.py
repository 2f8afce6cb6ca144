"""`ask --docs` and `ask --web` on the real engine, index and fetcher: the
answer is followed by a numbered Sources list, and every web request is in
the privacy ledger (with web search off, nothing is)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.app.test_cli import run_cli

ARTICLE = """<!doctype html><html><head><title>Velmora harbour lighthouse</title></head>
<body><article><h1>Velmora harbour lighthouse</h1>
<p>The harbour lighthouse of Velmora was built in 1873 by the engineer Ada Brightwater.
It stands 41 metres tall on the northern breakwater.</p></article></body></html>"""


@contextmanager
def searxng_and_pages() -> Iterator[tuple[str, list[str]]]:
    """A SearXNG-speaking JSON server (the only stand-in for a public search
    engine) that also serves the result page, on 127.0.0.1."""
    queries: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/search":
                queries.append(parse_qs(parts.query).get("q", [""])[0])
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                body = json.dumps(
                    {
                        "results": [
                            {
                                "title": "Velmora harbour lighthouse",
                                "url": f"{base}/article",
                                "content": "Built in 1873 by Ada Brightwater.",
                            }
                        ]
                    }
                ).encode()
                kind = "application/json"
            elif parts.path == "/article":
                body, kind = ARTICLE.encode(), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-searxng", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", queries
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def team_docs(tmp_path: Path, footnote_home: Path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "plan.md").write_text(
        "# Budget\n\nThe 2025 travel budget of the team is 12,400 euros, approved in March.\n"
    )
    result = run_cli("index", "add", str(folder), "--collection", "team", home=footnote_home)
    assert result.returncode == 0, result.stderr
    return folder


def test_ask_with_documents_lists_its_sources(
    tiny_model: Path, footnote_home: Path, team_docs: Path
) -> None:
    result = run_cli(
        "ask", "--model", str(tiny_model), "--docs", "team", "travel budget?", home=footnote_home
    )
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources\n")
    assert answer.strip()
    assert sources.splitlines() == ["[1] plan.md — Budget"]
    assert "Looking in your documents" in result.stderr
    ledger = run_cli("ledger", home=footnote_home)
    assert "Nothing has left this computer" in ledger.stdout


def test_ask_with_an_unknown_collection_is_one_line(tiny_model: Path, footnote_home: Path) -> None:
    result = run_cli("ask", "--model", str(tiny_model), "--docs", "nope", "hi", home=footnote_home)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("ggml_")]
    assert len(errors) == 1 and errors[0].startswith("footnote: error:"), result.stderr


def test_ask_with_the_web_cites_pages_and_documents_in_one_list(
    tiny_model: Path, footnote_home: Path, team_docs: Path
) -> None:
    with searxng_and_pages() as (base, queries):
        result = run_cli(
            "ask",
            "--model",
            str(tiny_model),
            "--docs",
            "team",
            "--docs-mode",
            "always",
            "--web",
            "always",
            "--searxng",
            base,
            "--allow-local-fetch",
            "Who built the Velmora lighthouse?",
            home=footnote_home,
        )
    assert result.returncode == 0, result.stderr
    assert len(queries) == 1 and queries[0].strip()
    assert f"Searching the web for “{queries[0]}”" in result.stderr
    sources = result.stdout.partition("\nSources\n")[2].splitlines()
    assert f"Velmora harbour lighthouse — {base}/article" in " ".join(sources)
    assert any("plan.md — Budget" in line for line in sources)
    assert [line.split("]")[0] for line in sources] == [f"[{n}" for n in range(1, len(sources) + 1)]
    ledger = run_cli("ledger", home=footnote_home).stdout
    assert queries[0] in ledger
    assert f"{base}/article" in ledger


def test_without_allow_local_fetch_a_local_page_is_refused_but_the_answer_comes(
    tiny_model: Path, footnote_home: Path
) -> None:
    with searxng_and_pages() as (base, _queries):
        result = run_cli(
            "ask",
            "--model",
            str(tiny_model),
            "--web",
            "always",
            "--searxng",
            base,
            "Who built the Velmora lighthouse?",
            home=footnote_home,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "could not be read" in result.stderr  # the snippet stood in, said so
