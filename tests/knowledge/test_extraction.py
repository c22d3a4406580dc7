"""Extraction per format, and files that cannot be read."""

from __future__ import annotations

import pytest
from django.test import override_settings

from knowledge.extraction import ExtractionError, Section, check_upload, extract, html_title, kind_for_filename
from knowledge.models import Kind
from tests.knowledge.pdfs import blank_pdf, pdf_with_lines


def test_markdown_keeps_headings_as_the_path_of_each_block():
    text = (
        "# Bistro\n\nWelcome to **Bistro Verde**, see [our site](https://example.com).\n\n"
        "## Menu\n\n### Vegan\n\nA lentil curry.\n\n- Falafel wrap\n- Salad\n\n"
        "## Hours\n\nOpen daily.\n\nClosing\n-------\n\nWe close at ten.\n"
    )

    sections = extract(Kind.MARKDOWN, text.encode())

    assert sections == [
        Section(("Bistro",), ["Welcome to Bistro Verde, see our site."]),
        Section(("Bistro", "Menu", "Vegan"), ["A lentil curry.", "Falafel wrap", "Salad"]),
        Section(("Bistro", "Hours"), ["Open daily."]),
        Section(("Bistro", "Closing"), ["We close at ten."]),
    ]


def test_markdown_paragraph_lines_join_into_one_block():
    sections = extract(Kind.MARKDOWN, "First line\nsecond line.\n\nNext paragraph.")

    assert sections == [Section((), ["First line second line.", "Next paragraph."])]


def test_plain_text_takes_a_short_line_before_a_paragraph_as_its_heading():
    text = "Opening hours\n\nWe open at nine.\nWe close at five.\n\nParking:\n\nThere is a car park."

    sections = extract(Kind.TEXT, text.encode())

    assert sections == [
        Section(("Opening hours",), ["We open at nine. We close at five."]),
        Section(("Parking",), ["There is a car park."]),
    ]


def test_html_drops_scripts_styles_navigation_and_hidden_parts():
    page = """<!doctype html><html><head><title>Bistro Verde</title><style>p { color: red }</style>
    <script>var secret = "tracking";</script></head><body>
    <nav><a href="/">Home</a> <a href="/menu">Menu</a></nav>
    <h1>Our menu</h1><p>Soup &amp; bread, <b>baked</b> daily.</p>
    <div hidden>Hidden offer</div>
    <h2>Vegan</h2><ul><li>Lentil curry</li><li>Falafel wrap</li></ul>
    <script>console.log("x")</script><noscript>Enable JavaScript</noscript>
    </body></html>"""

    sections = extract(Kind.HTML, page.encode())

    assert sections == [
        Section(("Our menu",), ["Soup & bread, baked daily."]),
        Section(("Our menu", "Vegan"), ["Lentil curry", "Falafel wrap"]),
    ]
    assert html_title(page) == "Bistro Verde"


def test_pdf_text_is_extracted_and_broken_lines_are_joined():
    data = pdf_with_lines(
        [
            "Vegan dishes",
            "",
            "Our menu has plenty of vegan options, including a red lentil curry with coconut",
            "rice and a falafel wrap with tahini.",
        ],
        ["Parking", "", "There is a public car park behind the bistro."],
    )

    sections = extract(Kind.PDF, data)

    blocks = [block for section in sections for block in section.blocks]
    assert any("red lentil curry with coconut rice and a falafel wrap" in block for block in blocks), sections
    assert any("public car park" in block for block in blocks), sections


def test_utf8_with_a_byte_order_mark_and_utf16_are_read():
    assert extract(Kind.TEXT, "\ufeffCafé crème.".encode())[0].blocks == ["Café crème."]
    assert extract(Kind.TEXT, "Café crème.".encode("utf-16"))[0].blocks == ["Café crème."]


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (Kind.TEXT, "Caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8 text"),
        (Kind.TEXT, b"\x00\x01binary", "binary data"),
        (Kind.TEXT, b"   \n\n  ", "no text"),
        (Kind.MARKDOWN, b"# Only a heading\n", "no text"),
        (Kind.HTML, b"<script>alert(1)</script>", "no text"),
        (Kind.PDF, b"This is not a PDF at all", "not a PDF"),
        (Kind.PDF, b"%PDF-1.7\nbroken beyond repair", "could not be read"),
        (Kind.PDF, blank_pdf(), "no text layer"),
    ],
)
def test_unreadable_documents_fail_with_a_clear_message(kind, data, message):
    with pytest.raises(ExtractionError, match=message):
        extract(kind, data)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("faq.md", Kind.MARKDOWN), ("FAQ.Markdown", Kind.MARKDOWN), ("a.txt", Kind.TEXT), ("x.HTM", Kind.HTML)],
)
def test_the_kind_comes_from_the_file_name(name, kind):
    assert kind_for_filename(name) == kind


def test_an_unknown_file_type_is_refused():
    with pytest.raises(ExtractionError, match=r"“menu.docx” is not a file AURA can read"):
        kind_for_filename("menu.docx")


@override_settings(AURA_KNOWLEDGE_MAX_UPLOAD_MB=10)
def test_upload_checks_refuse_empty_too_big_and_fake_pdfs():
    with pytest.raises(ExtractionError, match="empty"):
        check_upload("faq.md", 0, b"")
    with pytest.raises(ExtractionError, match=r"12\.0 MB; the limit is 10 MB"):
        check_upload("faq.pdf", 12 * 1024 * 1024, b"%PDF-1.7")
    with pytest.raises(ExtractionError, match="not a PDF"):
        check_upload("faq.pdf", 100, b"<html>")
    assert check_upload("faq.pdf", 100, b"%PDF-1.7") == Kind.PDF
