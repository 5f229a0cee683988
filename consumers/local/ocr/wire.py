"""Pure helpers of the OCR pool: image bytes in (checked), text lines out (joined)."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aibroker.errors import InvalidRequest

Image = npt.NDArray[np.uint8]
"""An RGB image, height x width x 3."""


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float
    box: list[list[float]]
    """The corners, clockwise from top-left, in pixels."""


class BadImage(InvalidRequest):
    code = "invalid_image"


def image_bytes(image: str, max_bytes: int) -> bytes:
    """The bytes of a base64 image (or `data:image/...;base64,` URL), within `max_bytes`."""
    if image.startswith("data:"):
        header, sep, image = image.partition(",")
        if not sep or not header.endswith(";base64"):
            raise BadImage("image data URLs must be base64-encoded", param="image")
    if len(image) * 3 // 4 > max_bytes:
        raise BadImage(f"image is larger than {max_bytes} bytes", param="image")
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("image is not valid base64", param="image") from exc


def decode_image(data: bytes, max_pixels: int, param: str = "image") -> Image:
    """Decoded RGB pixels, or BadImage saying why (not an image, corrupt, too large)."""
    from PIL import Image as PILImage  # the [ocr] extra; only the OCR pool decodes images
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise BadImage(
                    f"{param} has {img.width}x{img.height} pixels; at most {max_pixels} allowed",
                    param=param,
                )
            return np.asarray(img.convert("RGB"))
    except PILImage.DecompressionBombError as exc:
        raise BadImage(f"{param} has too many pixels", param=param) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(f"{param} is not an image in a known format", param=param) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # what Pillow raises on corrupt data
        raise BadImage(f"{param} is corrupt or truncated", param=param) from exc


def reading_order(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    """Lines grouped into rows (vertical centres within half a line height of the row's
    first), rows top to bottom, each row left to right."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda ln: (_centre_y(ln), _left(ln))):
        row = rows[-1] if rows else None
        if row and abs(_centre_y(line) - _centre_y(row[0])) <= _height(row[0]) / 2:
            row.append(line)
        else:
            rows.append([line])
    return [sorted(row, key=_left) for row in rows]


def ocr_response(model: str, lines: Sequence[TextLine], image: Image) -> dict[str, Any]:
    rows = reading_order(lines)
    height, width = int(image.shape[0]), int(image.shape[1])
    return {
        "object": "ocr.result",
        "model": model,
        "text": "\n".join(" ".join(ln.text for ln in row) for row in rows),
        "lines": [
            {"text": ln.text, "confidence": round(ln.confidence, 4), "box": ln.box}
            for row in rows
            for ln in row
        ],
        "width": width,
        "height": height,
        "usage": {"images": 1, "pixels": width * height},
    }


def _centre_y(line: TextLine) -> float:
    return sum(y for _, y in line.box) / len(line.box)


def _height(line: TextLine) -> float:
    ys = [y for _, y in line.box]
    return max(ys) - min(ys)


def _left(line: TextLine) -> float:
    return min(x for x, _ in line.box)
