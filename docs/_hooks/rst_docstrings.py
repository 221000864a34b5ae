"""griffe extension: read optxform's reStructuredText markup in docstrings as Markdown.

optxform's docstrings are Google style (``Args:`` sections) written with a few
reStructuredText constructs that also read well in ``help()``: ``.. math::`` blocks,
``:math:`` / ``:func:`` / ``:class:`` roles, ``.. code-block::`` and literal blocks
introduced by ``::``. mkdocstrings renders docstrings as Markdown, so this extension
rewrites those constructs before the docstring is parsed:

- ``.. math::`` + indented block -> ``$$ ... $$`` (an ``aligned`` environment when the
  block has ``&`` or ``\\\\`` line breaks), rendered by MathJax through arithmatex;
- ``:math:`x``` -> ``$x$``;
- ``:func:`name``` (and ``:class:``, ``:meth:``, ...) -> a link to the reference page of
  ``name`` when it is public, otherwise inline code;
- ``text::`` + indented block and ``.. code-block:: lang`` -> a fenced code block
  (``pycon`` for doctest blocks);
- an ``Args:`` entry for several parameters at once (``b1, b2: ...``) -> one entry per
  parameter with the shared description, as the Google style expects.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import public_names  # noqa: E402  (a sibling file, not a package)

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj|exc):`~?([^`]+)`")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _take_block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The indented block after line ``start - 1``: lines indented deeper than ``indent``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    block = lines[start:end]
    while block and not block[-1].strip():
        block.pop()
        end -= 1
    return block, end


def _math_block(body: str, pad: str) -> list[str]:
    if "&" in body or "\\\\" in body:
        body = "\\begin{aligned}\n" + body + "\n\\end{aligned}"
    return ["", pad + "$$", *[pad + ln for ln in body.splitlines()], pad + "$$", ""]


def _code_block(body: str, pad: str, lang: str) -> list[str]:
    return ["", pad + "```" + lang, *[(pad + ln) if ln else "" for ln in body.splitlines()], pad + "```", ""]


def _blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        pad = " " * _indent(line)
        directive = re.fullmatch(r"\.\. (math|code-block)::\s*(\S*)", stripped)
        if directive or (stripped.endswith("::") and not stripped.startswith("..")):
            block, end = _take_block(lines, i + 1, _indent(line))
            body = textwrap.dedent("\n".join(block)).strip("\n")
            if directive and directive.group(1) == "math":
                out += _math_block(body, pad)
            else:
                if not directive:
                    intro = stripped[:-2].rstrip()
                    if intro:
                        out.append(pad + intro + ":")
                lang = directive.group(2) if directive else ""
                out += _code_block(body, pad, lang or ("pycon" if body.startswith(">>>") else "python"))
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _split_shared_args(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    section_indent = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            section_indent = _indent(line)
        elif line.strip() and section_indent is not None and _indent(line) <= section_indent:
            section_indent = None
        shared = re.fullmatch(r"(\s+)(\w+(?:,\s*\w+)+):(.*)", line) if section_indent is not None else None
        if shared and _indent(line) > section_indent:
            rest, end = _take_block(lines, i + 1, _indent(line))
            for name in re.split(r",\s*", shared.group(2)):
                out += [f"{shared.group(1)}{name}:{shared.group(3)}", *rest]
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def rst_to_markdown(text: str, public: set[str]) -> str:
    """Rewrite the reStructuredText constructs optxform's docstrings use as Markdown."""

    def xref(match: re.Match) -> str:
        name = match.group(1).removeprefix("optxform.")
        return f"[`{name}`][optxform.{name}]" if name in public else f"`{match.group(1)}`"

    text = _split_shared_args(_blocks(text))
    text = _MATH_ROLE.sub(lambda m: f"${m.group(1).strip()}$", text)
    return _XREF_ROLE.sub(xref, text)


class RstToMarkdown(griffe.Extension):
    """Convert every docstring of the loaded package once, right after it is visited."""

    def __init__(self) -> None:
        super().__init__()
        self.public = set(public_names())

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value, self.public)
