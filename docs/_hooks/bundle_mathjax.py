"""mkdocs hook: serve MathJax from the installed ``django-static-mathjax`` package.

The site renders math offline: MathJax's ``tex-chtml.js``, its web fonts and its TeX
extensions are copied from the Python package (a ``docs`` extra) into
``assets/mathjax/``, so no page loads anything from a CDN.
"""

from __future__ import annotations

import importlib.resources
import pathlib

from mkdocs.structure.files import File

BUNDLE = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")


def mathjax_root() -> pathlib.Path:
    return pathlib.Path(str(importlib.resources.files("mathjax") / "static" / "mathjax" / "es5"))


def on_files(files, config, **kwargs):
    root = mathjax_root()
    for entry in BUNDLE:
        path = root / entry
        for source in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            uri = "assets/mathjax/" + source.relative_to(root).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files
