"""Documents to text for RAG: the kind told by type, name or bytes; plain text and Markdown
kept, HTML's visible text only, PDF's text layer through pypdf (a PDF written here by hand),
and what cannot be read refused as `UnsupportedDocument`."""

from __future__ import annotations

import pytest

from aibroker.rag.extract import (
    HTML,
    PDF,
    TEXT,
    UnsupportedDocument,
    document_kind,
    extract_text,
)

pytestmark = pytest.mark.unit


def minimal_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of `pages`, each a list of lines in Helvetica, with a correct cross-reference
    table: the smallest file pypdf reads without repairing it."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * n} 0 R" for n in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for n, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * n} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pdf_text_comes_page_by_page() -> None:
    data = minimal_pdf([["Quarterly report", "Revenue grew by 12 percent."], ["Page two (notes)."]])
    text = extract_text(data, filename="report.pdf", content_type="application/pdf")
    assert "Quarterly report" in text
    assert "Revenue grew by 12 percent." in text
    first, second = text.split("\n\n")
    assert "Page two (notes)." in second
    assert "Page two" not in first


def test_a_pdf_is_known_by_its_bytes_without_a_name_or_type() -> None:
    data = minimal_pdf([["Found by the magic number."]])
    assert document_kind(data, filename="upload", content_type=None) == PDF
    assert "magic number" in extract_text(data, filename="upload", content_type=None)


def test_a_broken_pdf_is_refused() -> None:
    with pytest.raises(UnsupportedDocument, match="PDF"):
        extract_text(b"%PDF-1.4\nnot really", filename="x.pdf", content_type="application/pdf")


def test_a_pdf_without_a_text_layer_gives_no_text() -> None:
    assert extract_text(minimal_pdf([[]]), filename="scan.pdf", content_type=None) == ""


def test_html_keeps_the_visible_text_only() -> None:
    page = b"""<!doctype html><html><head><title>Hidden title</title>
    <style>p { color: red }</style><script>var secret = 1;</script></head>
    <body><h1>Opening hours</h1><p>Mon&ndash;Fri&nbsp;9&ndash;17,
    <b>closed</b> on holidays.</p><ul><li>Parking: yes</li><li>Caf&eacute;: no</li></ul>
    <template><p>not rendered</p></template><noscript>enable JS</noscript></body></html>"""
    text = extract_text(page, filename="hours.html", content_type="text/html; charset=utf-8")
    assert text == (
        "Opening hours\n\nMon\u2013Fri 9\u201317, closed on holidays.\n\n"
        "Parking: yes\n\nCaf\u00e9: no"
    )
    for hidden in ("Hidden title", "color", "secret", "not rendered", "enable JS"):
        assert hidden not in text


def test_preformatted_html_keeps_its_lines() -> None:
    page = b"<p>Run:</p><pre>make dev\n  make test</pre><p>then\n  stop.</p>"
    text = extract_text(page, filename="x.html", content_type=None)
    assert text == "Run:\n\nmake dev\n  make test\n\nthen stop."


def test_markdown_and_plain_text_are_kept_as_they_are() -> None:
    markdown = "# Title\n\nSome *emphasis* and a [link](http://x).\n"
    assert extract_text(markdown.encode(), filename="a.md", content_type=None) == markdown
    plain = "caf\u00e9 \u2014 \u6771\u4eac\n"
    assert (
        extract_text(b"\xef\xbb\xbf" + plain.encode(), filename="a.txt", content_type=None) == plain
    )
    assert extract_text(plain.encode("utf-16"), filename="a.txt", content_type=None) == plain


@pytest.mark.parametrize(
    ("filename", "content_type", "head", "kind"),
    [
        ("notes.txt", None, b"hello", TEXT),
        ("README.md", "application/octet-stream", b"# hi", TEXT),
        ("x", "text/markdown", b"# hi", TEXT),
        ("x.pdf", "text/html", b"<p>hi</p>", HTML),  # the type wins over the name
        ("page", None, b"  <!DOCTYPE html><html>", HTML),
        ("data.json", None, b"{}", TEXT),
        ("script.py", "text/x-python", b"print()", TEXT),
        ("upload", None, b"just words", TEXT),
    ],
)
def test_the_kind_is_told_by_type_then_name_then_bytes(
    filename: str, content_type: str | None, head: bytes, kind: str
) -> None:
    assert document_kind(head, filename=filename, content_type=content_type) == kind


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n", "photo.png", "image/png"),
        (b"PK\x03\x04", "book.docx", None),
        (b"\xff\xd8\xff\xe0 jpeg", "upload", None),  # not UTF-8
        (b"text\x00with nul", "dump.txt", None),
    ],
)
def test_what_cannot_be_read_is_refused(
    data: bytes, filename: str, content_type: str | None
) -> None:
    with pytest.raises(UnsupportedDocument):
        extract_text(data, filename=filename, content_type=content_type)
