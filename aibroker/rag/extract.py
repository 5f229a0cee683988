"""A document's bytes to the text that is indexed: plain text and Markdown as they are (the
Markdown's marks are few and its words are what a search matches), HTML's visible text
(stdlib `html.parser`: no script, style or head), PDF's text layer through pypdf. The kind is
told by the content type, then the file name, then the bytes themselves.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath


class UnsupportedDocument(ValueError):
    """The bytes are not a kind this module reads, or not readable as the kind they claim."""


TEXT, HTML, PDF = "text", "html", "pdf"

_BY_TYPE = {
    "text/plain": TEXT,
    "text/markdown": TEXT,
    "text/x-markdown": TEXT,
    "text/csv": TEXT,
    "text/x-rst": TEXT,
    "application/json": TEXT,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "application/pdf": PDF,
}
_BY_SUFFIX = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": TEXT,
    ".markdown": TEXT,
    ".rst": TEXT,
    ".csv": TEXT,
    ".json": TEXT,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
    ".pdf": PDF,
}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}
"""Content types that say nothing (what a client sends when it does not know)."""


def document_kind(data: bytes, *, filename: str, content_type: str | None) -> str:
    """TEXT, HTML or PDF: the content type when it names one, else the file name's suffix,
    else what the bytes start with."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _BY_TYPE:
        return _BY_TYPE[media]
    if media not in _GENERIC and not media.startswith("text/"):
        raise UnsupportedDocument(f"documents of type {media} cannot be indexed")
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    head = data[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return PDF
    if head.startswith((b"<!doctype html", b"<html")):
        return HTML
    if media.startswith("text/") or not suffix:
        return TEXT
    raise UnsupportedDocument(f"files named *{suffix} cannot be indexed")


def extract_text(data: bytes, *, filename: str, content_type: str | None) -> str:
    """The text to index from a document's bytes; `UnsupportedDocument` when there is no
    reading them."""
    kind = document_kind(data, filename=filename, content_type=content_type)
    if kind == PDF:
        return _pdf_text(data)
    text = _decode(data)
    return _html_text(text) if kind == HTML else text


def _decode(data: bytes) -> str:
    """UTF-8 (a byte-order mark dropped) or UTF-16 with its mark; anything else is refused
    rather than indexed as mojibake."""
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(f"the document is not {encoding.upper()} text") from exc
    if "\x00" in text:
        raise UnsupportedDocument("the document is binary, not text")
    return text


_HIDDEN = {"script", "style", "head", "template", "noscript", "svg", "iframe", "object"}
_BLOCKS = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
}  # fmt: skip
"""Elements that end a line of visible text: their words are not run into the next ones."""


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self._pre += tag == "pre"
            self.parts.append(_BLOCK)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append(_BLOCK)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self._pre = max(0, self._pre - (tag == "pre"))
            self.parts.append(_BLOCK)

    def handle_data(self, data: str) -> None:
        # A line break in the markup is a space on the page, except inside <pre>.
        if not self._hidden:
            self.parts.append(data if self._pre else _SPACES.sub(" ", data))


_SPACES = re.compile(r"\s+")
_BLOCK = "\x00"
"""Where a block element starts or ends (no NUL survives `_decode`, so none is the text's)."""


def _html_text(markup: str) -> str:
    parser = _Visible()
    parser.feed(markup)
    parser.close()
    blocks = []
    for block in "".join(parser.parts).split(_BLOCK):
        if "\n" in block:  # preformatted: its lines as they are, blank ones at its ends gone
            text = "\n".join(line.rstrip() for line in block.splitlines()).strip("\n")
        else:
            text = _SPACES.sub(" ", block).strip()
        if text.strip():
            blocks.append(text)
    # One blank line between blocks: the chunker reads it as a paragraph break.
    return "\n\n".join(blocks)


def _pdf_text(data: bytes) -> str:
    """The pages' text layers, a blank line between pages. A scanned PDF (no text layer)
    gives nothing: that is for OCR, not this module."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:  # pragma: no cover - the extra is installed where PDFs are read
        raise UnsupportedDocument("reading PDF needs pypdf (the [embeddings] extra)") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedDocument("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        if isinstance(exc, UnsupportedDocument):
            raise
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())
