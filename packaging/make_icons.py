"""Render the app's icons from their SVG sources in assets/.

    .venv/bin/python packaging/make_icons.py          # rewrites assets/*.png, *.ico, *.icns

One SVG per icon is the source of truth; this writes what each platform's
installer wants next to it, with the names briefcase looks for
(``icon = "assets/footnote"`` in pyproject.toml):

- ``footnote-<N>.png`` for N in 16..1024: the window icon (app/style/theme.py), the
  Linux ``.desktop`` entry (hicolor sizes 16..512) and the README;
- ``footnote.ico`` (Windows MSI and the .exe), ``footnote.icns`` (macOS .app);
- the same three forms of ``gguf`` for the .gguf document type.

Qt's SVG renderer draws every size from the vector (small sizes stay crisp
instead of being scaled down from a big bitmap); Pillow, already installed
with sentence-transformers, packs the ICO and ICNS containers. Run it again
after editing an SVG and commit the results: builds never need Qt or Pillow
for icons.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

PNG_SIZES_PX = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES_PX = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest an ICO frame holds
DOCUMENT_PNG_SIZES_PX = (16, 32, 64, 128, 256, 512)

ICONS = {
    # output stem: (svg source, PNG sizes)
    "footnote": ("footnote.svg", PNG_SIZES_PX),
    "gguf": ("gguf-document.svg", DOCUMENT_PNG_SIZES_PX),
}


def render_png(svg: bytes, size_px: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise SystemExit("the SVG source does not parse")
    image = QImage(size_px, size_px, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data().data())


def write_icon_set(stem: str, svg_name: str, sizes_px: tuple[int, ...]) -> list[Path]:
    from PIL import Image

    svg = (ASSETS / svg_name).read_bytes()
    pngs = {size: render_png(svg, size) for size in sorted({*sizes_px, *ICO_SIZES_PX, 1024})}
    written = []
    for size in sizes_px:
        out = ASSETS / f"{stem}-{size}.png"
        out.write_bytes(pngs[size])
        written.append(out)
    images = {size: Image.open(io.BytesIO(data)) for size, data in pngs.items()}

    # ICO: each frame drawn from the vector at its own size (Pillow would
    # otherwise downscale one big bitmap for every frame).
    ico = ASSETS / f"{stem}.ico"
    largest = images[max(ICO_SIZES_PX)]
    largest.save(
        ico,
        format="ICO",
        sizes=[(s, s) for s in ICO_SIZES_PX],
        append_images=[images[s] for s in ICO_SIZES_PX if s != max(ICO_SIZES_PX)],
    )
    written.append(ico)

    # ICNS: Pillow writes the 16..1024 (incl. @2x) entries from the images given.
    icns = ASSETS / f"{stem}.icns"
    images[1024].save(
        icns, format="ICNS", append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)]
    )
    written.append(icns)
    return written


def main() -> None:
    # Rendering needs no display.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    for stem, (svg_name, sizes_px) in ICONS.items():
        for path in write_icon_set(stem, svg_name, sizes_px):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
    del app


if __name__ == "__main__":
    main()
