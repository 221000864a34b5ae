"""The documentation site builds with warnings as errors, offline, with a page per name.

Needs the ``docs`` extra (part of ``test``): mkdocs, mkdocs-material,
mkdocstrings-python and the MathJax package. The build takes a few seconds.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import optxform

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_hooks"))
from rst_docstrings import rst_to_markdown  # noqa: E402


def build_site(site_dir: pathlib.Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of this checkout into ``site_dir``."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(site_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    proc = build_site(site_dir)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return site_dir, proc.stdout + proc.stderr


def test_build_has_no_warnings(site):
    _, log = site
    assert "WARNING" not in log and "ERROR" not in log, log


def test_every_public_name_has_a_reference_page(site):
    site_dir, _ = site
    missing = []
    public = [name for name in optxform.__all__ if not name.startswith("__")]
    for name in public:
        page = site_dir / "reference" / f"{name}.html"
        if not page.exists() or f'id="optxform.{name}"' not in page.read_text():
            missing.append(name)
    assert not missing, f"public names without a reference entry: {missing}"
    overview = (site_dir / "reference" / "index.html").read_text()
    assert all(f'href="{name}.html"' in overview for name in public)


def test_reference_page_shows_signature_math_args_and_example(site):
    site_dir, _ = site
    page = (site_dir / "reference" / "adamw.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert "adamw(learning_rate" in text and "weight_decay" in text
    assert page.count('class="arithmatex"') >= 5          # display and inline math
    assert "\\theta_t = \\theta_{t-1}" in page            # the update rule, as TeX for MathJax
    assert "torch.optim.AdamW" in text and "optax.adamw" in text
    assert "&gt;&gt;&gt;" in page                         # the doctest example
    assert ".. math::" not in page and ":math:" not in page and ":func:" not in page


def test_site_is_offline(site):
    site_dir, _ = site
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    offenders = [p.name for p in site_dir.rglob("*.html") if remote.search(p.read_text())]
    assert not offenders, f"pages that load something from the network: {offenders[:10]}"
    assert (site_dir / "assets" / "mathjax" / "tex-chtml.js").stat().st_size > 500_000
    fonts = list((site_dir / "assets" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert len(fonts) > 10
    page = (site_dir / "reference" / "adamw.html").read_text()
    assert 'src="../assets/mathjax/tex-chtml.js"' in page


def test_search_index_covers_guides_and_reference(site):
    site_dir, _ = site
    docs = json.loads((site_dir / "search" / "search_index.json").read_text())["docs"]
    locations = {d["location"].split("#")[0] for d in docs}
    assert {"reference/adamw.html", "optimizers.html", "coming-from-optax.html"} <= locations


def test_rst_markup_becomes_markdown():
    doc = """Summary.

    .. math::

        a &= b \\\\
        c &= d

    with :math:`x_t` and :func:`adam`, :class:`optxform.TraceState`, :func:`jax.grad`.

    Args:
      b1, b2: the betas.
        More text.
      eps: epsilon.

    Example::

        >>> 1 + 1
        2
    """
    md = rst_to_markdown(inspect.cleandoc(doc), {"adam", "TraceState"})
    assert "$$\n\\begin{aligned}\na &= b \\\\\nc &= d\n\\end{aligned}\n$$" in md
    assert "with $x_t$ and [`adam`][optxform.adam], [`TraceState`][optxform.TraceState], `jax.grad`." in md
    assert "  b1: the betas.\n    More text.\n  b2: the betas.\n    More text.\n  eps: epsilon." in md
    assert "Example:\n\n```pycon\n>>> 1 + 1\n2\n```" in md


def test_docs_speak_to_users():
    # Pages are for users: no tracker numbers, no references to the contributors' guides.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    internal = re.compile(r"\bissue\s*#?\d+|\bstyle guide\b|STYLE\.md|API\.md", re.I)
    offenders = [f"{p.name}: {m.group(0)}" for p in pages for m in internal.finditer(p.read_text())]
    assert not offenders, offenders
