"""Regenerate the README's screenshots from the real app.

Runs ``python -m app`` in a real X window on a virtual screen (Xvfb), types
into it with xdotool like a person would, and captures the window with
ImageMagick. The model is the tiny synthetic Phi-3 the tests use, so answers
are real llama.cpp output of a model with scripted weights.

    sudo apt-get install xvfb xdotool imagemagick fonts-noto-core
    .venv/bin/python packaging/screenshots.py        # writes docs/*.png
    .venv/bin/python packaging/screenshots.py documents   # only docs/screenshot-documents.png
    .venv/bin/python packaging/screenshots.py cited   # the cited answer and the ledger
    .venv/bin/python packaging/screenshots.py dark    # docs/screenshot-dark.png
    .venv/bin/python packaging/screenshots.py declined   # Auto holds documents back
    .venv/bin/python packaging/screenshots.py versions   # regenerate, edit, export
    .venv/bin/python packaging/screenshots.py search     # the conversation search box
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DISPLAY = os.environ.get("SCREENSHOT_DISPLAY", ":77")  # another if :77 is taken
SCREEN = "1360x860x24"
WINDOW_SIZE = (1240, 800)
PRIMARY_BLUE = "#3B63F0"  # the primary button colour in assets/style.qss

sys.path.insert(0, str(ROOT))


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def wait_for_window(env: dict[str, str], timeout_s: float = 30.0, name: str = "^Footnote$") -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", name],
            check=False,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.split()
        if found:
            return found[0]
        time.sleep(0.2)
    raise SystemExit("the Footnote window did not appear")


def capture(window: str, name: str, env: dict[str, str]) -> Path:
    out = DOCS / name
    sh("import", "-window", window, str(out), env=env)
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def color_center(png: Path, color: str) -> tuple[int, int]:
    """Centre of the pixels of exactly ``color``: finds the primary button."""
    listing = sh("convert", str(png), "-depth", "8", "txt:-")
    xs, ys = [], []
    for line in listing.splitlines():
        if color in line:
            x, y = line.split(":", 1)[0].split(",")
            xs.append(int(x))
            ys.append(int(y))
    if not xs:
        raise SystemExit(f"no {color} pixels in {png.name}: did the layout change?")
    return sorted(xs)[len(xs) // 2], sorted(ys)[len(ys) // 2]


def type_and_send(window: str, text: str, env: dict[str, str], wait_s: float = 1.5) -> None:
    sh("xdotool", "type", "--window", window, "--delay", "15", text, env=env)
    sh("xdotool", "key", "--window", window, "Return", env=env)
    time.sleep(wait_s)


class _SlowMirror(BaseHTTPRequestHandler):
    """Stands in for the model host so the download UI can be photographed
    mid-way: streams zeros of the catalog's size at ~25 MB/s (the app would
    reject them at the checksum; the screenshot is taken long before)."""

    size = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        block = b"\0" * (1 << 20)
        try:
            for _ in range(self.size >> 20):
                self.wfile.write(block)
                time.sleep(0.04)
        except OSError:
            pass


def start_mirror(tmp: Path) -> tuple[ThreadingHTTPServer, Path]:
    from engine.catalog import load_catalog

    entries = [dataclasses.asdict(e) for e in load_catalog()]
    _SlowMirror.size = entries[0]["size_bytes"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowMirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entries[0]["url"] = f"http://127.0.0.1:{server.server_port}/{entries[0]['file']}"
    catalog = tmp / "mirror-catalog.json"
    catalog.write_text(json.dumps({"version": 1, "models": entries}))
    return server, catalog


def start_app(
    home: Path, env: dict[str, str], catalog: Path | None = None, open_path: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    extra = {"FOOTNOTE_CATALOG": str(catalog)} if catalog else {}
    app = subprocess.Popen(
        [sys.executable, "-m", "app", *([str(open_path)] if open_path else [])],
        cwd=ROOT,
        env={**env, "FOOTNOTE_HOME": str(home), **extra},
    )
    window = wait_for_window(env)
    sh("xdotool", "windowsize", window, str(WINDOW_SIZE[0]), str(WINDOW_SIZE[1]), env=env)
    sh("xdotool", "windowmove", window, "0", "0", env=env)
    # No window manager on Xvfb: focus directly (windowactivate needs a WM).
    sh("xdotool", "windowfocus", "--sync", window, env=env)
    time.sleep(1.5)
    return app, window


def build_demo_checkpoint(folder: Path) -> Path:
    """A ~200M-parameter random Phi-3 checkpoint: big enough that converting
    it takes long enough to photograph."""
    from transformers import Phi3Config, Phi3ForCausalLM

    sys.path.insert(0, str(ROOT))
    from tests.hf_checkpoint import build_phi3_checkpoint

    small = build_phi3_checkpoint(folder)
    config = Phi3Config.from_pretrained(str(small))
    config.hidden_size, config.num_hidden_layers = 1024, 16
    config.num_attention_heads = config.num_key_value_heads = 16
    config.intermediate_size = 2816
    Phi3ForCausalLM(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


MEETINGS = 40  # meeting notes in the documents scene: indexing them takes long enough to see


def documents_scene(tmp: Path, env: dict[str, str]) -> None:
    """The Documents page while a folder indexes (files turning "Indexed",
    the count growing, the time left), then settled: a corrupt PDF failed,
    an image, an .odt file and an empty note skipped."""
    import sqlite3
    import zipfile

    from app.paths import AppPaths
    from tests.retrieval.make_files import MARKDOWN, page_text, write_docx, write_text_pdf

    folder = tmp / "Project notes"
    # (the weekly notes sort last: the files worth a look are at the top)
    (folder / "weekly").mkdir(parents=True)
    write_text_pdf(folder / "annual-report.pdf", [page_text(n, words=60) for n in range(1, 4)])
    write_docx(folder / "quarterly-review.docx")
    (folder / "install-guide.md").write_text(MARKDOWN)
    for n in range(1, MEETINGS + 1):
        topics = "\n\n".join(
            f"## Item {i}\n\n"
            + " ".join(f"Point {i}.{w} about the plan and budget." for w in range(30))
            for i in range(1, 5)
        )
        (folder / "weekly" / f"2024-{n:02d}-02.md").write_text(f"# Meeting {n}\n\n{topics}\n")
    (folder / "agenda-draft.md").write_text("")
    (folder / "scan-from-printer.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Cat")
    (folder / "team-photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    with zipfile.ZipFile(folder / "budget-2025.odt", "w") as odt:
        odt.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        odt.writestr("content.xml", "<office:document-content/>")
    good = 3 + MEETINGS
    home = tmp / "documents-home"
    app, window = start_app(home, env, open_path=folder)
    db = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)}).documents / "documents.sqlite3"
    deadline = time.monotonic() + 300
    settled = 0
    live_taken = False
    while time.monotonic() < deadline and settled < 5:
        time.sleep(0.5)
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                states = dict(conn.execute("SELECT state, COUNT(*) FROM files GROUP BY state"))
        except sqlite3.Error:
            continue
        indexed = states.get("indexed", 0)
        if not live_taken and good // 3 <= indexed <= good // 2:
            time.sleep(1.2)  # the page reads the files again every second
            capture(window, "screenshot-documents-indexing.png", env)
            live_taken = True
        settled = settled + 1 if indexed == good and states.get("failed") else 0
    time.sleep(2.0)  # the page reads the index back
    capture(window, "screenshot-documents.png", env)
    app.terminate()
    app.wait(30)


# The cited scene's model answers this (pieces as in engine.synthetic_model:
# each unique, "▁" a space), citing both sources the turn is given.
CITED_PIECES = (
    "The▁harbour▁lighthouse",
    "▁was▁built▁in▁1873",
    "▁by▁the▁engineer",
    "▁**Ada▁Brightwater**",
    "▁[1].",
    "\n\nYour▁council▁notes",
    "▁put▁its▁restoration",
    "▁at▁**12,400▁euros**,",
    "▁approved▁in▁March",
    "▁[2].",
)
CITED_ARTICLE = """<!doctype html><html><head><title>Velmora harbour lighthouse</title></head>
<body><article><h1>Velmora harbour lighthouse</h1>
<p>The harbour lighthouse of Velmora was built in 1873 by the engineer Ada Brightwater.
It stands 41 metres tall on the northern breakwater.</p></article></body></html>"""


class _Searxng(BaseHTTPRequestHandler):
    """Stands in for a SearXNG instance (its JSON API) and the page it finds."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/search"):
            result = {
                "title": "Velmora harbour lighthouse",
                "url": f"{base}/velmora-lighthouse",
                "content": "Built in 1873 by Ada Brightwater.",
            }
            body, kind = json.dumps({"results": [result]}).encode(), "application/json"
        else:
            body, kind = CITED_ARTICLE.encode(), "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def cited_setup(
    tmp: Path, env: dict[str, str], name: str = "cited"
) -> tuple[Path, ThreadingHTTPServer]:
    """A home with the cited model chosen, the council PDF indexed and the
    stand-in SearXNG serving the lighthouse page (web search on Always)."""
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine import synthetic_model
    from tests.retrieval.make_files import write_text_pdf

    tmp = tmp / name
    tmp.mkdir()
    original = synthetic_model.SCRIPTED_PIECES
    synthetic_model.SCRIPTED_PIECES = CITED_PIECES
    try:
        model = synthetic_model.write_phi3_gguf(tmp / "Phi-3-mini-4k-instruct-tiny-cited.gguf")
    finally:
        synthetic_model.SCRIPTED_PIECES = original
    folder = tmp / "Council notes"
    folder.mkdir()
    write_text_pdf(
        folder / "council-minutes-2025.pdf",
        [
            "Council minutes, February 2025. The harbour committee met to discuss parking.",
            "Council minutes, March 2025. The council approved 12,400 euros for the restoration "
            "of the harbour lighthouse, to be completed over the summer.",
        ],
    )
    home = tmp / "cited-home"
    app_env = {**env, "FOOTNOTE_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "app", "index", "add", str(folder), "--collection", "Council"],
        cwd=ROOT,
        env=app_env,
        check=True,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Searxng)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
    settings = load_settings(paths.settings_file).settings
    settings.remember_model(str(model))
    settings.web_searxng_url = f"http://127.0.0.1:{server.server_port}"
    settings.web_allow_local_fetch = True  # the stand-in engine runs on this machine
    settings.default_web_mode = "always"
    save_settings(paths.settings_file, settings)
    return home, server


def cited_scene(tmp: Path, env: dict[str, str]) -> None:
    """An answer citing a local document and a web page; then the ledger."""
    import sqlite3

    from app.paths import AppPaths

    home, server = cited_setup(tmp, env)
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
    app, window = start_app(home, env)
    type_and_send(window, "Who built the Velmora lighthouse, and what will its repair cost?", env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(1.0)
        with sqlite3.connect(f"file:{paths.history_db}?mode=ro", uri=True) as db:
            done = db.execute(
                "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND finish_reason = 'stop'"
            ).fetchone()[0]
        if done:
            break
    time.sleep(1.5)
    capture(window, "screenshot-cited-answer.png", env)
    sh("xdotool", "key", "--window", window, "ctrl+shift+l", env=env)
    time.sleep(1.5)
    capture(window, "screenshot-ledger.png", env)
    app.terminate()
    app.wait(30)
    server.shutdown()


def declined_scene(tmp: Path, env: dict[str, str]) -> None:
    """Documents on Auto: a greeting is answered without them, and the
    status line says so with "Use my documents"; the documents button beside
    the globe shows the mode."""
    import sqlite3

    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine.synthetic_model import write_phi3_gguf
    from tests.retrieval.make_files import MARKDOWN

    folder = tmp / "Team handbook"
    folder.mkdir()
    (folder / "install-guide.md").write_text(MARKDOWN)
    home = tmp / "declined-home"
    app_env = {**env, "FOOTNOTE_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "app", "index", "add", str(folder), "--collection", "Handbook"],
        cwd=ROOT,
        env=app_env,
        check=True,
    )
    model = write_phi3_gguf(tmp / "Phi-3-mini-4k-instruct-tiny.gguf")
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
    settings = load_settings(paths.settings_file).settings
    settings.remember_model(str(model))
    save_settings(paths.settings_file, settings)
    app, window = start_app(home, env)
    type_and_send(window, "Say hello in one sentence.", env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(1.0)
        with sqlite3.connect(f"file:{paths.history_db}?mode=ro", uri=True) as db:
            done = db.execute(
                "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND finish_reason = 'stop'"
            ).fetchone()[0]
        if done:
            break
    time.sleep(1.5)
    capture(window, "screenshot-documents-auto.png", env)
    app.terminate()
    app.wait(30)


def capture_screen(name: str, env: dict[str, str]) -> Path:
    """The whole virtual screen (windows side by side)."""
    out = DOCS / name
    sh("import", "-window", "root", "-crop", "1360x800+0+0", "+repage", str(out), env=env)
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def versions_scene(tmp: Path, env: dict[str, str]) -> None:
    """Regenerate (‹ 2/2 ›), a question edited inline and sent as a new
    branch, and the conversation exported as Markdown, opened beside the
    window. The window is driven through Qt by packaging/screenshot_versions.py."""
    driver_script = ROOT / "packaging" / "screenshot_versions.py"
    home, server = cited_setup(tmp, env, name="versions")
    steps = tmp / "versions-steps"
    steps.mkdir()
    exported = tmp / "Velmora lighthouse.md"
    driver = subprocess.Popen(
        [sys.executable, str(driver_script), "--drive", str(steps), str(exported)],
        cwd=ROOT,
        env={**env, "FOOTNOTE_HOME": str(home)},
    )
    viewer = None

    def wait_for_step(step: str) -> None:
        deadline = time.monotonic() + 240
        while not (steps / step).exists():
            if driver.poll() is not None:
                raise SystemExit(f"the window's driver stopped before {step}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{step} did not happen within 240 s")
            time.sleep(0.2)

    try:
        window = wait_for_window(env)
        for step, name in (
            ("regenerated", "screenshot-regenerate.png"),
            ("editing", "screenshot-edit.png"),
            ("edited", "screenshot-edited-branch.png"),
        ):
            wait_for_step(step)
            time.sleep(1.0)
            capture(window, name, env)
            (steps / f"{step}.captured").touch()
        wait_for_step("exported")
        viewer = subprocess.Popen(
            [sys.executable, str(driver_script), "--view", str(exported)], cwd=ROOT, env=env
        )
        view_window = wait_for_window(env, name="exported by Footnote$")
        sh("xdotool", "windowsize", view_window, "620", "800", env=env)
        sh("xdotool", "windowmove", view_window, "740", "0", env=env)
        time.sleep(1.5)
        capture_screen("screenshot-export.png", env)
        (steps / "exported.captured").touch()
        driver.wait(60)
    finally:
        for process in (viewer, driver):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        server.shutdown()


def search_scene(tmp: Path, env: dict[str, str]) -> None:
    """Ctrl+K over a few earlier conversations: the hits for "lighthouse rep",
    each matching line with the words marked; then Enter opens the answer."""
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine.history import ConversationStore
    from engine.passages import SourcePassage
    from engine.synthetic_model import write_phi3_gguf

    home = tmp / "search-home"
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)}).ensure()
    store = ConversationStore(paths.history_db)
    minutes = SourcePassage(
        "The council approved 12,400 euros for the restoration of the harbour lighthouse.",
        "council-minutes-2025.pdf, p. 2",
        "document",
        {"path": str(tmp / "council-minutes-2025.pdf"), "page": 2},
        "d1",
        0.8,
    )
    chats = [
        (
            "Reading list in Markdown",
            "How do I keep a reading list in Markdown?",
            "Use one file with a heading per topic and a checklist:\n\n- [ ] *The Lighthouse "
            "Stevensons*, Bella Bathurst\n- [x] *To the Lighthouse*, Virginia Woolf",
            [],
        ),
        (
            "Velmora lighthouse repair",
            "Who built the Velmora lighthouse, and what will its repair cost?",
            "It was built by the Stevenson family in 1868.\n\nThe council approved 12,400 euros "
            "for the lighthouse repair, to be completed over the summer [1].",
            [minutes],
        ),
        (
            "Harbour walk",
            "Plan a two-hour walk around the harbour.",
            "Start at the ferry pier, follow the sea wall to the lighthouse (its repair starts "
            "in June, so the gallery may be closed), and come back through the market.",
            [],
        ),
        (
            "Phi-3 technical report",
            "Summarise the Phi-3 technical report in three bullets.",
            "- A 3.8B model trained on heavily filtered web data and synthetic data.\n"
            "- It rivals much larger models on reasoning benchmarks.\n"
            "- It stores few facts: search fixes that.",
            [],
        ),
    ]
    for title, question, answer, sources in chats:
        conversation = store.create_conversation(title)
        store.add_message(conversation.id, "user", question)
        store.add_message(
            conversation.id, "assistant", answer, finish_reason="stop", sources=sources
        )
    store.close()
    model = write_phi3_gguf(tmp / "Phi-3-mini-4k-instruct-tiny.gguf")
    settings = load_settings(paths.settings_file).settings
    settings.remember_model(str(model))
    save_settings(paths.settings_file, settings)
    app, window = start_app(home, env)
    sh("xdotool", "key", "--window", window, "ctrl+k", env=env)
    time.sleep(1.0)
    popup = wait_for_window(env, name="^Search conversations$")
    sh("xdotool", "type", "--window", popup, "--delay", "60", "lighthouse rep", env=env)
    time.sleep(1.5)
    capture_window_area("screenshot-search.png", env)
    sh("xdotool", "key", "--window", popup, "Down", env=env)
    time.sleep(0.3)
    sh("xdotool", "key", "--window", popup, "Return", env=env)
    time.sleep(1.5)
    capture(window, "screenshot-search-opened.png", env)
    app.terminate()
    app.wait(30)


def capture_window_area(name: str, env: dict[str, str]) -> Path:
    """The main window's area of the screen, with what lies over it (a popup)."""
    out = DOCS / name
    size = f"{WINDOW_SIZE[0]}x{WINDOW_SIZE[1]}+0+0"
    sh("import", "-window", "root", "-crop", size, "+repage", str(out), env=env)
    print(f"wrote {out.relative_to(ROOT)}")
    return out


def dark_scene(tmp: Path, env: dict[str, str]) -> None:
    """The dark theme (Settings → Theme): an answer citing a PDF and a web
    page, its sources and the composer, as someone with a dark desktop sees them."""
    import sqlite3

    from app.paths import AppPaths
    from app.settings import load_settings, save_settings

    home, server = cited_setup(tmp, env, name="dark")
    paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
    settings = load_settings(paths.settings_file).settings
    settings.theme = "dark"
    save_settings(paths.settings_file, settings)
    app, window = start_app(home, env)
    type_and_send(window, "Who built the Velmora lighthouse, and what will its repair cost?", env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(1.0)
        with sqlite3.connect(f"file:{paths.history_db}?mode=ro", uri=True) as db:
            done = db.execute(
                "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND finish_reason = 'stop'"
            ).fetchone()[0]
        if done:
            break
    time.sleep(1.5)
    capture(window, "screenshot-dark.png", env)
    app.terminate()
    app.wait(30)
    server.shutdown()


def main() -> None:
    for tool in ("Xvfb", "xdotool", "import"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install xvfb xdotool imagemagick")
    from app.paths import AppPaths
    from app.settings import load_settings, save_settings
    from engine.synthetic_model import write_phi3_gguf

    DOCS.mkdir(exist_ok=True)
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", SCREEN, "-nolisten", "tcp"])
    env = {**os.environ, "DISPLAY": DISPLAY, "QT_QPA_PLATFORM": "xcb"}
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            if sys.argv[1:] == ["dark"]:  # only this one: screenshots.py dark
                dark_scene(Path(tmp), env)
                return
            if sys.argv[1:] == ["documents"]:  # only this one: screenshots.py documents
                documents_scene(Path(tmp), env)
                return
            if sys.argv[1:] == ["cited"]:  # only these: screenshots.py cited
                cited_scene(Path(tmp), env)
                return
            if sys.argv[1:] == ["declined"]:  # only this one: screenshots.py declined
                declined_scene(Path(tmp), env)
                return
            if sys.argv[1:] == ["versions"]:  # only these: screenshots.py versions
                versions_scene(Path(tmp), env)
                return
            if sys.argv[1:] == ["search"]:  # only these: screenshots.py search
                search_scene(Path(tmp), env)
                return
            home = Path(tmp) / "home"
            model = write_phi3_gguf(Path(tmp) / "Phi-3-mini-4k-instruct-tiny.gguf")

            # 2. A model chosen earlier (as after "Open a GGUF file…"), then a chat.
            paths = AppPaths.from_environment({"FOOTNOTE_HOME": str(home)})
            settings = load_settings(paths.settings_file).settings
            settings.remember_model(str(model))
            settings.window_geometry = ""
            save_settings(paths.settings_file, settings)
            app, window = start_app(home, env)
            type_and_send(window, "How do I keep a reading list in Markdown?", env)
            sh("xdotool", "key", "--window", window, "ctrl+n", env=env)
            type_and_send(window, "Summarise the Phi-3 technical report in three bullets.", env)
            type_and_send(window, "Can you show that as code?", env)
            capture(window, "screenshot-chat.png", env)
            app.terminate()
            app.wait(10)

            # 3. A new user clicks "Download Phi-3-mini" on the first-run screen.
            mirror, catalog = start_mirror(Path(tmp))
            app, window = start_app(Path(tmp) / "fresh-home", env, catalog)
            x, y = color_center(capture(window, "screenshot-welcome.png", env), PRIMARY_BLUE)
            sh("xdotool", "mousemove", "--window", window, str(x), str(y), "click", "1", env=env)
            time.sleep(6)
            capture(window, "screenshot-models.png", env)
            app.terminate()
            app.wait(10)
            mirror.shutdown()

            # 4. Converting a Hugging Face folder (as when a folder is opened
            #    with Footnote, dropped on it, or chosen with File > Convert…).
            checkpoint = build_demo_checkpoint(Path(tmp) / "Phi-3-demo-finetune")
            app, window = start_app(home, env, open_path=checkpoint)
            time.sleep(5.0)
            capture(window, "screenshot-convert.png", env)
            app.terminate()
            app.wait(30)

            # 5. The Documents page, with a file that could not be read.
            documents_scene(Path(tmp), env)

            # 6. An answer citing a document and a web page; the privacy ledger.
            cited_scene(Path(tmp), env)

            # 6b. The same answer in the dark theme.
            dark_scene(Path(tmp), env)

            # 7. Documents on Auto hold back from a greeting, and say so.
            declined_scene(Path(tmp), env)

            # 8. Regenerate, edit and resend, and export to Markdown.
            versions_scene(Path(tmp), env)

            # 9. Search conversations (Ctrl+K), and a hit opened.
            search_scene(Path(tmp), env)
    finally:
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()
