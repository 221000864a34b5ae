"""mkdocs hook: one API reference page per public name, read from ``optxform/__init__.py``.

The package's ``__init__.py`` re-exports every public name explicitly
(``from optxform.<package> import name as name``) and lists it in ``__all__``. This hook
parses that file (without importing jax), writes ``reference/<name>.md`` for every name in
``__all__``, an overview ``reference/index.md`` grouped by subpackage, and the matching
navigation entries, so that a new public name gets its page with no edit to the docs.
"""

from __future__ import annotations

import ast
import pathlib
import sys

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "optxform"
INIT = PACKAGE / "__init__.py"
HOOKS = pathlib.Path(__file__).resolve().parent

# Subpackage -> section title, in the order the overview and navigation show them.
GROUPS = {
    "optimizers": "Optimizers",
    "transforms": "Building blocks",
    "core": "Protocol and composition",
    "schedules": "Schedules",
    "wrappers": "Wrappers",
    "linesearch": "Line search",
    "quasi_newton": "Quasi-Newton",
    "state": "State utilities",
    "parallel": "Multi-device",
    "fused": "Packed layout",
    "problems": "Test problems",
    "explore": "Choosing an optimizer",
}


def public_names() -> dict[str, str]:
    """``{name: subpackage}`` for every name in ``optxform.__all__``, in ``__all__`` order."""
    tree = ast.parse(INIT.read_text())
    origin: dict[str, str] = {}
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optxform."):
            for alias in node.names:
                origin[alias.asname or alias.name] = node.module.split(".")[1]
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            exported = [n for n in ast.literal_eval(node.value) if not n.startswith("__")]
    missing = [n for n in exported if n not in origin]
    if missing:
        raise ValueError(f"names in optxform.__all__ without a re-export line: {missing}")
    return {name: origin[name] for name in exported}


def grouped() -> dict[str, list[str]]:
    """Section title -> sorted public names (functions first, then classes and constants)."""
    groups: dict[str, list[str]] = {}
    for name, package in public_names().items():
        groups.setdefault(GROUPS.get(package, package), []).append(name)
    order = list(GROUPS.values())
    return {
        title: sorted(names, key=lambda n: (not n[0].islower(), n.lower()))
        for title, names in sorted(groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    }


def summaries(names: dict[str, str]) -> dict[str, str]:
    """The first line of each public name's docstring, read from the subpackage's source."""
    found: dict[str, str] = {}
    for name, package in names.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name
                        and ast.get_docstring(node)):
                    found.setdefault(name, ast.get_docstring(node).strip().splitlines()[0])
    return found


def page(name: str) -> str:
    """The page of one name: its docstring, rendered with the name as the page's title."""
    return f"::: optxform.{name}\n"


def overview(groups: dict[str, list[str]]) -> str:
    if str(HOOKS) not in sys.path:   # mkdocs loads hooks without their folder on the path
        sys.path.insert(0, str(HOOKS))
    from rst_docstrings import rst_to_markdown  # a sibling file (imports this one)

    names = public_names()
    summary = summaries(names)
    lines = [
        "# API reference",
        "",
        "Every public name of `optxform`, one page each, generated from the docstrings: the",
        "signature, the update in math, the arguments, the torch and optax equivalents and an",
        "example. Everything is importable from the top level (`import optxform as ox; ox.adamw`).",
        "",
    ]
    for title, members in groups.items():
        lines += [f"## {title}", "", "| name | what it is |", "|---|---|"]
        for n in members:
            text = rst_to_markdown(summary.get(n, ""), set(names)).replace("|", "\\|")
            lines.append(f"| [`{n}`]({n}.md) | {text} |")
        lines.append("")
    return "\n".join(lines)


def on_config(config, **kwargs):
    groups = grouped()
    section = [{"Overview": "reference/index.md"}]
    section += [{title: [{n: f"reference/{n}.md"} for n in names]} for title, names in groups.items()]
    config["nav"] = [*config["nav"], {"API reference": section}]
    return config


def on_files(files, config, **kwargs):
    groups = grouped()
    files.append(File.generated(config, "reference/index.md", content=overview(groups)))
    for names in groups.values():
        for name in names:
            files.append(File.generated(config, f"reference/{name}.md", content=page(name)))
    return files
