"""mkdocs hook: the site's home page is the repository's README.md.

README.md links to the guides as ``docs/<page>.md`` (the paths that work on a source
host); inside the site, where ``docs/`` is the root, those links lose that prefix.
"""

from __future__ import annotations

import pathlib
import re

from mkdocs.structure.files import File

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def home_markdown(readme: str) -> str:
    return re.sub(r"\]\(docs/", "](", readme)


def on_files(files, config, **kwargs):
    files.append(File.generated(config, "index.md", content=home_markdown(README.read_text())))
    return files
