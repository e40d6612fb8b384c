"""HTML → plain text with the standard library's `html.parser`.

Drops scripts, styles and page furniture (nav, header, footer, aside, forms, and elements marked
`role="navigation"`, `aria-hidden="true"` or `hidden`); block elements become line breaks, list
items get a "- " bullet, headings a Markdown "#" prefix, and <pre> keeps its whitespace.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

SKIP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
        "button", "iframe", "head", "select", "canvas", "object"}
SKIP_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCK = {"p", "div", "section", "article", "main", "blockquote", "table", "tr", "ul", "ol", "dl", "dt",
         "dd", "figure", "figcaption", "address", "details", "summary", "hr", "br", "li", "pre",
         "h1", "h2", "h3", "h4", "h5", "h6", "caption", "thead", "tbody", "tfoot"}
CELLS = {"td", "th"}


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_stack: list[str] = []  # open elements whose content is dropped
        self.pre = 0
        self.title: list[str] = []
        self.in_title = False

    def _skipped(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in SKIP:
            return True
        values = {k: (v or "") for k, v in attrs}
        return (values.get("role", "").lower() in SKIP_ROLES or values.get("aria-hidden") == "true"
                or "hidden" in values)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if self.skip_stack:
            if tag not in VOID:
                self.skip_stack.append(tag)
            return
        if tag not in VOID and self._skipped(tag, attrs):
            self.skip_stack.append(tag)
            return
        if tag in BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        elif tag in CELLS:
            self.parts.append(" | ")
        elif len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.parts.append("#" * int(tag[1]) + " ")
        elif tag == "pre":
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip_stack and tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skip_stack:
            # close the innermost matching element; tolerate unclosed children inside it
            if tag in self.skip_stack:
                while self.skip_stack and self.skip_stack.pop() != tag:
                    pass
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in BLOCK and tag != "li":  # list items start a line but do not end a paragraph
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.skip_stack:
            return
        if self.pre:
            # protect <pre> whitespace from the folding below
            self.parts.append(data.replace("\n", "\x00").replace(" ", "\x01").replace("\t", "\x02"))
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The readable text of an HTML document (title first when the body lacks it)."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    lines = []
    for line in "".join(parser.parts).split("\n"):
        line = re.sub(r"[ \t]+", " ", line).strip()
        line = re.sub(r"^\|\s*", "", line)
        lines.append(line.replace("\x00", "\n").replace("\x01", " ").replace("\x02", "\t"))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    if title and title not in text[: len(title) + 200]:
        text = f"# {title}\n\n{text}" if text else title
    return text
