"""Turn an uploaded or pasted document into sections of text: each with its heading path, as blocks
(paragraphs, list items) that the splitter cuts into passages. Pure functions, no database.

Every failure raises ``ExtractionError`` with a message an admin can act on.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePath

from django.conf import settings

from knowledge.models import Kind


class ExtractionError(Exception):
    """The document cannot be read; the message says why, in words for the admin."""


@dataclass
class Section:
    headings: tuple[str, ...]
    blocks: list[str] = field(default_factory=list)


EXTENSIONS = {
    ".md": Kind.MARKDOWN,
    ".markdown": Kind.MARKDOWN,
    ".txt": Kind.TEXT,
    ".text": Kind.TEXT,
    ".html": Kind.HTML,
    ".htm": Kind.HTML,
    ".pdf": Kind.PDF,
}
ACCEPTED = "Markdown (.md), text (.txt), HTML (.html) or PDF (.pdf)"


def max_upload_bytes() -> int:
    return settings.AURA_KNOWLEDGE_MAX_UPLOAD_MB * 1024 * 1024


def kind_for_filename(filename: str) -> Kind:
    kind = EXTENSIONS.get(PurePath(filename).suffix.lower())
    if kind is None:
        raise ExtractionError(f"“{PurePath(filename).name}” is not a file AURA can read: upload {ACCEPTED}.")
    return kind


def check_upload(filename: str, size: int, head: bytes) -> Kind:
    """The cheap checks, made before anything is stored: type by name, size, and a PDF's signature."""
    kind = kind_for_filename(filename)
    if size == 0:
        raise ExtractionError("The file is empty.")
    limit = max_upload_bytes()
    if size > limit:
        raise ExtractionError(
            f"The file is {size / 1024 / 1024:.1f} MB; the limit is {settings.AURA_KNOWLEDGE_MAX_UPLOAD_MB} MB."
        )
    if kind == Kind.PDF and not head.lstrip()[:5] == b"%PDF-":
        raise ExtractionError("The file is named .pdf but is not a PDF.")
    return kind


def extract(kind: str, data: bytes | str) -> list[Section]:
    """Sections of a document of ``kind``; raises ExtractionError when nothing usable is in it."""
    if isinstance(data, bytes) and len(data) > max_upload_bytes():
        raise ExtractionError(f"The file is larger than {settings.AURA_KNOWLEDGE_MAX_UPLOAD_MB} MB.")
    if kind == Kind.PDF:
        sections = extract_pdf(data if isinstance(data, bytes) else data.encode())
    else:
        text = data if isinstance(data, str) else decode_text(data)
        if kind == Kind.HTML:
            sections = extract_html(text)
        elif kind == Kind.TEXT:
            sections = extract_plain(text)
        else:  # Markdown, and pasted text (plain text is valid Markdown; pasted notes often use '#')
            sections = extract_markdown(text)
    sections = [s for s in sections if any(b.strip() for b in s.blocks)]
    if not sections:
        raise ExtractionError("The document has no text to answer from.")
    return sections


def decode_text(data: bytes) -> str:
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractionError(
            f"The file is not UTF-8 text (undecodable byte at position {exc.start}); save it as UTF-8 and upload again."
        ) from None
    if "\x00" in text:
        raise ExtractionError("The file contains binary data, not text.")
    return text


# --- Markdown and plain text -----------------------------------------------------------------

_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _inline(text: str, *, markup: bool = True) -> str:
    if not markup:  # HTML's text nodes: already free of markup
        return re.sub(r"\s+", " ", text).strip()
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(2), text)
    text = _HTML_TAG.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


class _Builder:
    """Collects blocks under the current heading path."""

    def __init__(self, *, markup: bool = True) -> None:
        self.markup = markup
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []

    def heading(self, level: int, title: str) -> None:
        self.end_block()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        if title:
            self.path.append((level, title))

    def line(self, text: str) -> None:
        self.lines.append(text)

    def end_block(self) -> None:
        # Markdown's lines join with a space; HTML's text nodes carry their own white space.
        text = _inline((" " if self.markup else "").join(self.lines), markup=self.markup)
        self.lines = []
        if not text:
            return
        headings = tuple(title for _, title in self.path)
        if not self.sections or self.sections[-1].headings != headings:
            self.sections.append(Section(headings))
        self.sections[-1].blocks.append(text)


def extract_markdown(text: str) -> list[Section]:
    builder = _Builder()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    in_fence = False
    for number, raw in enumerate(lines):
        if _FENCE.match(raw):
            in_fence = not in_fence
            builder.end_block()
            continue
        if in_fence:
            builder.line(raw)
            continue
        if match := _ATX.match(raw):
            builder.heading(len(match.group(1)), _inline(match.group(2)))
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if raw.strip() and builder.lines == [] and _SETEXT.match(following) and not _LIST_ITEM.match(raw):
            builder.heading(1 if following.strip().startswith("=") else 2, _inline(raw))
            continue
        if _SETEXT.match(raw) and not builder.lines and number > 0 and lines[number - 1].strip():
            continue  # the underline of a setext heading handled above
        if not raw.strip() or _RULE.match(raw):
            builder.end_block()
            continue
        if _LIST_ITEM.match(raw):  # each list item is its own block, so it ends like a sentence
            builder.end_block()
            builder.line(_LIST_ITEM.sub("", raw, count=1))
            continue
        builder.line(raw.lstrip("> ").strip() if raw.lstrip().startswith(">") else raw.strip())
    builder.end_block()
    return builder.sections


def _looks_like_heading(paragraph: list[str], next_exists: bool) -> bool:
    if len(paragraph) != 1 or not next_exists:
        return False
    line = paragraph[0].strip()
    words = line.split()
    return 0 < len(words) <= 8 and not re.search(r"[.!?,;]$", line) and not _LIST_ITEM.match(line)


def extract_plain(text: str) -> list[Section]:
    """Paragraphs split by blank lines; a short one-line paragraph without punctuation before another
    paragraph is taken as a heading ("Opening hours" above the hours)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.strip():
            current.append(raw)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    builder = _Builder()
    for number, paragraph in enumerate(paragraphs):
        if _looks_like_heading(paragraph, number + 1 < len(paragraphs)):
            builder.heading(1, _inline(paragraph[0].rstrip(":")))
            continue
        for raw in paragraph:
            if _LIST_ITEM.match(raw):
                builder.end_block()
                builder.line(_LIST_ITEM.sub("", raw, count=1))
            else:
                builder.line(raw.strip())
        builder.end_block()
    return builder.sections


# --- HTML ------------------------------------------------------------------------------------

_SKIPPED = {"script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "button", "select"}
_BLOCKS = {
    "p", "div", "li", "br", "tr", "td", "th", "dt", "dd", "section", "article", "main", "aside", "header",
    "footer", "blockquote", "pre", "ul", "ol", "dl", "table", "figure", "figcaption", "form", "hr", "address",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = _Builder(markup=False)
        self.skip_stack: list[str] = []
        self.heading_level = 0
        self.heading_text: list[str] = []
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_stack:
            if tag == self.skip_stack[-1] or tag in _SKIPPED:
                self.skip_stack.append(tag)
            return
        if tag == "title":
            self.in_title = True
        hidden = any(name == "hidden" or (name == "aria-hidden" and value == "true") for name, value in attrs)
        if tag in _SKIPPED or (hidden and tag not in _VOID):
            self.skip_stack.append(tag)
            return
        if tag in _HEADINGS:
            self.builder.end_block()
            self.heading_level = _HEADINGS[tag]
            self.heading_text = []
        elif tag in _BLOCKS:
            self.builder.end_block()

    def handle_endtag(self, tag: str) -> None:
        if self.skip_stack:
            if tag == self.skip_stack[-1]:
                self.skip_stack.pop()
            return
        if tag == "title":
            self.in_title = False
        if tag in _HEADINGS and self.heading_level:
            self.builder.heading(self.heading_level, _inline(" ".join(self.heading_text), markup=False))
            self.heading_level = 0
        elif tag in _BLOCKS:
            self.builder.end_block()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.skip_stack:
            return
        if self.heading_level:
            self.heading_text.append(data)
        else:
            self.builder.line(data)


def extract_html(text: str) -> list[Section]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    parser.builder.end_block()
    return parser.builder.sections


def html_title(text: str) -> str:
    parser = _HTMLText()
    parser.feed(text)
    return re.sub(r"\s+", " ", "".join(parser.title)).strip()


# --- PDF -------------------------------------------------------------------------------------


def extract_pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5] == b"%PDF-":
        raise ExtractionError("The file is not a PDF.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is password-protected; upload a copy without a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"The PDF could not be read ({exc.__class__.__name__}); it may be damaged.") from None
    text = "\n\n".join(pages)
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # words hyphenated across lines
    if not text.strip():
        raise ExtractionError("The PDF has no text layer (scanned pages?); AURA does not read images of text.")
    return extract_plain(_join_pdf_lines(text))


def _join_pdf_lines(text: str) -> str:
    """PDF text breaks lines inside sentences; keep a break only after a line that ends a sentence or is short."""
    out: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if out and out[-1] and stripped and not re.search(r"[.!?:]$", out[-1]) and len(out[-1].split()) > 8:
            out[-1] = f"{out[-1]} {stripped}"
        else:
            out.append(stripped)
    return "\n".join(out)
