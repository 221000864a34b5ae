"""The built ``adamw`` reference page, rendered in a real headless Chromium.

Marked ``browser``: the default test command deselects it, since Chromium is a system
package (Debian: ``apt-get install chromium``) that pip cannot install. ``.ci/run``
installs Chromium and runs it: ``pytest -m browser tests/test_docs_browser.py``. Without
Chromium this test fails; it never skips.

The browser runs with networking off (every host name resolves nowhere), so the math it
renders comes from the MathJax bundled into the site.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

from tests.test_docs_site import build_site

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000",
         "--window-size=1280,1600"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("Chromium is not installed (Debian: apt-get install chromium)")


def run_browser(args: list[str], profile: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def adamw_page(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    proc = build_site(site_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site_dir / "reference" / "adamw.html"


def test_adamw_page_renders_signature_and_math(adamw_page, tmp_path):
    proc = run_browser(["--dump-dom", adamw_page.as_uri()], tmp_path / "profile-dom")
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    text = re.sub(r"<[^>]+>", "", dom)
    assert "adamw(learning_rate" in text and "weight_decay" in text and "mask" in text
    # MathJax replaced every formula of the page by its CHTML output (the display update
    # rule, the inline symbols of the argument table), with no TeX errors.
    formulas = adamw_page.read_text().count('class="arithmatex"')
    containers = re.findall(r"<mjx-container[^>]*>", dom)
    assert formulas >= 5 and len(containers) == formulas, (formulas, len(containers))
    assert any('display="true"' in c for c in containers)
    assert "<mjx-merror" not in dom
    assert "\\theta_t = \\theta_{t-1}" not in text   # no TeX left unrendered


def test_adamw_page_screenshot(adamw_page, tmp_path):
    from PIL import Image

    shot = tmp_path / "adamw.png"
    proc = run_browser([f"--screenshot={shot}", adamw_page.as_uri()], tmp_path / "profile-shot")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1600)
    assert shot.stat().st_size > 50_000
    assert len(image.getcolors(maxcolors=256 * 256) or range(257)) > 64   # text, not a blank page
