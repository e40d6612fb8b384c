"""Reading and cleaning documents: text, Markdown, HTML, JSONL, PDF; normalisation; boilerplate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from expertpm_forge.data.clean import boilerplate_lines, clean_documents, normalize_text
from expertpm_forge.data.html import html_to_text
from expertpm_forge.data.ingest import Document, expand_sources, load_documents, read_document
from expertpm_forge.data.records import DataError


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (hand-built, with a correct xref table)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def test_each_format_is_read(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.txt": "plain text\n",
        "b.md": "---\ntitle: front matter\n---\n# Heading\n<!-- a comment -->\nBody text.\n",
        "c.html": "<html><head><title>T</title><style>p{}</style></head><body><p>Hello &amp; welcome</p></body></html>",
        "d.jsonl": '{"text": "first record"}\n\n{"text": "second record", "label": "x"}\n',
    })
    docs = load_documents(expand_sources(["*"], tmp_path), tmp_path)
    assert [(d.id, d.kind, d.text) for d in docs] == [
        ("a.txt", "text", "plain text\n"),
        ("b.md", "markdown", "# Heading\n\nBody text.\n"),
        ("c.html", "html", "# T\n\nHello & welcome"),
        ("d.jsonl:1", "jsonl", "first record"),
        ("d.jsonl:3", "jsonl", "second record"),
    ]


def test_html_drops_scripts_and_page_furniture() -> None:
    html = """<!doctype html><html><head><title>Guide</title><script>alert('x')</script></head><body>
      <header><a href="/">Logo</a></header><nav><ul><li>Home</li><li>Docs</li></ul></nav>
      <div role="navigation">Breadcrumbs</div><div aria-hidden="true">hidden</div>
      <main><h1>Guide</h1><p>First  paragraph
      spans lines.</p><ul><li>one</li><li>two<br>lines</li></ul>
      <pre>  indented
    code</pre><table><tr><th>a</th><td>b</td></tr></table><img src="x.png"></main>
      <aside>Related links</aside><footer>Copyright</footer><form><input name="q"></form></body></html>"""
    assert html_to_text(html) == ("# Guide\n\nFirst paragraph spans lines.\n\n- one\n- two\nlines\n\n"
                                  "  indented\n    code\n\na | b")


def test_jsonl_field_and_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"r.jsonl": '{"review": {"body": "nested text"}}\n', "bad.jsonl": '{"text": "ok"}\n{oops\n',
                     "no.jsonl": '{"body": "x"}\n', "latin.txt": "caf\xe9".encode("latin-1"), "x.docx": "?"})
    assert [d.text for d in read_document(tmp_path / "r.jsonl", "r.jsonl", text_field="review.body")] == ["nested text"]
    cases = {
        "bad.jsonl": "bad.jsonl: line 2: invalid JSON: Expecting property name enclosed in double quotes "
                     "(column 2) — each line must be one JSON object",
        "no.jsonl": "no.jsonl: line 1 has no 'text' field — set data.text_field to the field that holds the text",
        "latin.txt": "latin.txt: not UTF-8 text (byte 0xe9 at offset 3) — re-save the file as UTF-8",
        "x.docx": "x.docx: unsupported file type '.docx' — supported: .htm, .html, .jsonl, .markdown, .md, .pdf, "
                  ".text, .txt",
    }
    for name, message in cases.items():
        with pytest.raises(DataError) as info:
            read_document(tmp_path / name, name)
        assert str(info.value) == message


def test_sources_that_match_nothing(tmp_path: Path) -> None:
    write(tmp_path, {"docs/a.md": "x"})
    with pytest.raises(DataError) as info:
        expand_sources(["docs/*.md", "docs/*.txt"], tmp_path, where="experts/x/forge.toml")
    assert str(info.value) == ("experts/x/forge.toml: data.sources[1]: 'docs/*.txt' matches no files — "
                               f"patterns are relative to {tmp_path.name}/")


def test_pdf_with_pypdf(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    (tmp_path / "doc.pdf").write_bytes(minimal_pdf("Hello from a PDF page"))
    (doc,) = read_document(tmp_path / "doc.pdf", "doc.pdf")
    assert (doc.kind, doc.text.strip()) == ("pdf", "Hello from a PDF page")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(DataError, match="^broken.pdf: cannot read PDF: "):
        read_document(tmp_path / "broken.pdf", "broken.pdf")


def test_pdf_without_pypdf_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if it were not installed
    (tmp_path / "doc.pdf").write_bytes(minimal_pdf("x"))
    with pytest.raises(DataError) as info:
        read_document(tmp_path / "doc.pdf", "docs/doc.pdf")
    assert str(info.value) == ("docs/doc.pdf: reading PDF files needs the pypdf package — pip install pypdf, "
                               "or convert the file to text")


def test_normalize_text() -> None:
    text = "\ufeffＦｕｌｌｗｉｄｔｈ ﬁle\r\nsoft\u00adhyphen\x07bell\u200bzero\t\ttabs  \u00a0nbsp\r\n\n\n\n  end  "
    assert normalize_text(text) == "Fullwidth file\nsofthyphenbellzero tabs nbsp\n\nend"


def test_boilerplate_lines_repeated_across_documents_are_removed() -> None:
    footer = "Copyright 2025 Example Corp. All rights reserved."
    docs = [Document(f"d{i}", f"d{i}", "text", f"Unique body number {i}.\n{footer}\nShared by two." if i < 2
                     else f"Unique body number {i}.\n\n{footer}") for i in range(4)]
    assert boilerplate_lines([d.text for d in docs], min_docs=3, fraction=0.5) == {footer}
    cleaned, stats = clean_documents(docs)
    assert [d.text for d in cleaned] == ["Unique body number 0.\nShared by two.", "Unique body number 1.\nShared by two.",
                                         "Unique body number 2.", "Unique body number 3."]
    assert (stats.boilerplate_patterns, stats.boilerplate_lines_removed, stats.documents_out) == (1, 4, 4)
    kept, _ = clean_documents(docs, boilerplate=False)
    assert all(footer in d.text for d in kept)


def test_documents_empty_after_cleaning_are_dropped() -> None:
    docs = [Document("a", "a", "text", " \x00\x01 \n\n"), Document("b", "b", "text", "words")]
    cleaned, stats = clean_documents(docs)
    assert [d.id for d in cleaned] == ["b"] and stats.empty_dropped == 1
