"""Rebuild the dashboard's favicon.ico from favicon.svg: Chromium (tests/browser.py's) draws the SVG
at 16, 32 and 48 pixels on a transparent background, and the PNGs are packed into one ICO file
(each entry a PNG, which every browser since 2007 reads).

    .venv/bin/python scripts/make_favicon.py
"""

from __future__ import annotations

import base64
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "capsem_proxy" / "dashboard" / "static"
SIZES = (16, 32, 48)


def pack_ico(images: list[tuple[int, bytes]]) -> bytes:
    """An ICO file holding PNG images given as (size in pixels, PNG bytes)."""
    header = struct.pack("<HHH", 0, 1, len(images))  # reserved, type 1 = icon, image count
    offset = len(header) + 16 * len(images)
    entries, blobs = b"", b""
    for size, png in images:
        # width, height (0 means 256), palette size, reserved, colour planes, bits per pixel, bytes, offset
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
        blobs += png
        offset += len(png)
    return header + entries + blobs


def render_pngs(svg: str) -> list[tuple[int, bytes]]:
    sys.path.insert(0, str(ROOT))
    from tests.browser import chromium_context, require_chromium

    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    images = []
    with chromium_context(require_chromium()) as context:
        page = context.new_page()
        for size in SIZES:
            page.set_viewport_size({"width": size, "height": size})
            page.set_content(
                f'<html><body style="margin:0;background:transparent">'
                f'<img src="{data_url}" width="{size}" height="{size}" style="display:block"></body></html>'
            )
            page.wait_for_function("document.images[0].complete")
            images.append((size, page.screenshot(omit_background=True)))
    return images


def main() -> int:
    svg = (STATIC / "favicon.svg").read_text(encoding="utf-8")
    ico = pack_ico(render_pngs(svg))
    (STATIC / "favicon.ico").write_bytes(ico)
    print(f"wrote {STATIC / 'favicon.ico'} ({len(ico)} bytes, {', '.join(map(str, SIZES))} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
