"""The package looks finished: version, license, changelog and the py.typed marker ship."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import optxform
from optxform import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, "pyproject.toml has no version"
    return match.group(1)


def test_version_matches_pyproject_and_the_command_line(capsys):
    assert optxform.__version__ == _pyproject_version()
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"optxform {optxform.__version__}\n"


def test_license_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_changelog_has_unreleased_and_the_current_release():
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert any(h.startswith(f"{_pyproject_version()} - ") for h in headings[1:]), headings


def test_wheel_ships_py_typed_and_the_license(tmp_path):
    # Build from a copy so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "optxform", source / "optxform",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w",
                           str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("optxform-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "optxform/py.typed" in names
    info = f"optxform-{_pyproject_version()}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
