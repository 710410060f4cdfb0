"""A report as a list of blocks (headings, paragraphs, bullet lists, tables, figures), rendered twice:
as Markdown (figures linked) and as one self-contained HTML page (figures inlined as SVG, the style
inlined: no script, no external URL, it reads offline). Every report of policygrad is written with
these: a study's, an aggregate comparison's, a tuning's, a diagnosis's."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    path: Path  # an SVG file, under the folder the Markdown is written in
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block], base: Path) -> str:
    """The blocks as Markdown; figures are linked relative to ``base`` (the folder of the file)."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {_md_cell(item)}" for item in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(map(_md_cell, block.header)) + " |",
                     "|" + "|".join("---" for _ in block.header) + "|"]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{block.path.stem.replace('_', ' ')}]({block.path.relative_to(base).as_posix()})\n\n"
                       f"*{block.caption}*")
    return "\n\n".join(out) + "\n"


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
"""


def inline_svg(path: Path) -> str:
    """The ``<svg>`` element of a matplotlib SVG file, without its XML prolog, doctype and metadata."""
    text = path.read_text()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The blocks as one self-contained HTML page titled ``title``."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>\n" + "\n".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "\n</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                             for row in block.rows)
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>")
        else:
            body.append(f"<figure>\n{inline_svg(block.path)}\n<figcaption>{html.escape(block.caption)}"
                        "</figcaption>\n</figure>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def markdown_for_terminal(markdown: str, width: int = 100) -> str:
    """A report's Markdown (as :func:`to_markdown` writes it) as a terminal shows it well: tables as
    aligned columns with their ``\\|`` unescaped, headings underlined, paragraphs wrapped at ``width``."""
    import re
    import textwrap

    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            widths = [max(len(row[i]) if i < len(row) else 0 for row in table) for i in range(len(table[0]))]
            for k, row in enumerate(table):
                out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
                if k == 0:
                    out.append("  ".join("-" * w for w in widths))
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                table.append(cells)
            continue
        flush()
        line = line.replace("\\|", "|")
        heading = re.match(r"(#+) (.*)", line)
        if heading:
            out += [heading.group(2), ("=" if len(heading.group(1)) == 1 else "-") * len(heading.group(2))]
        elif line.strip():
            indent = "  " if line.startswith("- ") else ""
            out += textwrap.wrap(line, width, subsequent_indent=indent) or [line]
        else:
            out.append("")
    flush()
    return "\n".join(out)
