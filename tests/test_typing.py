"""Type hints on the public API: every public callable is annotated, and mypy agrees.

Two checks: an ``inspect`` walk over ``optxform.__all__`` that names the first parameter
or return without an annotation, and two mypy runs (the package with the configuration in
pyproject.toml, and ``tests/typing_usage.py``, code written the way users write it, with
strict settings, next to a few wrong calls that mypy must reject). mypy is part of the
``test`` extra; if it is missing the tests fail.
"""

from __future__ import annotations

import inspect
import pathlib
import subprocess
import sys

import optxform

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _signature_gaps(label: str, fn, skip_first: bool = False) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return [f"{label}: no signature"]
    parameters = list(signature.parameters.values())
    if skip_first:
        parameters = parameters[1:]
    gaps = [
        f"{label}: parameter {p.name!r}"
        for p in parameters
        if p.annotation is inspect.Parameter.empty
    ]
    if signature.return_annotation is inspect.Signature.empty:
        gaps.append(f"{label}: return")
    return gaps


def _class_gaps(name: str, cls: type) -> list[str]:
    if issubclass(cls, BaseException):
        return []
    gaps = []
    if "__init__" in vars(cls) or hasattr(cls, "__dataclass_fields__"):
        init = inspect.signature(cls)
        gaps += [
            f"{name}(): parameter {p.name!r}"
            for p in init.parameters.values()
            if p.annotation is inspect.Parameter.empty
        ]
    for attribute, value in vars(cls).items():
        if attribute.startswith("_"):
            continue
        label = f"{name}.{attribute}"
        if isinstance(value, property):
            gaps += _signature_gaps(label, value.fget, skip_first=True)
        elif isinstance(value, (staticmethod, classmethod)):
            gaps += _signature_gaps(label, value.__func__, isinstance(value, classmethod))
        elif inspect.isfunction(value):
            gaps += _signature_gaps(label, value, skip_first=True)
    return gaps


def public_annotation_gaps() -> list[str]:
    """Every unannotated parameter or return among the public callables, in order."""
    gaps = []
    for name in optxform.__all__:
        obj = getattr(optxform, name)
        if inspect.isclass(obj):
            gaps += _class_gaps(name, obj)
        elif callable(obj):
            gaps += _signature_gaps(name, obj)
    return gaps


def test_every_public_callable_is_annotated():
    gaps = public_annotation_gaps()
    assert not gaps, f"{len(gaps)} missing annotations, first: {gaps[0]}"


def test_the_gap_finder_finds_gaps():
    def half(x, y: int = 1):
        return x

    assert _signature_gaps("half", half) == ["half: parameter 'x'", "half: return"]


def _mypy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file",
         str(ROOT / "pyproject.toml"), *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )


def test_mypy_passes_on_the_package():
    result = _mypy("-p", "optxform")
    assert result.returncode == 0, result.stdout + result.stderr


MISUSES = {  # wrong calls mypy must reject: the hints reach users through the decorators
    "optxform.adam(b1='0.9')": '"b1" to "adam"',
    "optxform.rprop(etas=1.0)": '"etas" to "rprop"',
    "optxform.linear_schedule('1', 0.0, 10)": '"linear_schedule"',
    "optxform.chain(optxform.sgd(0.1), 3)": '"chain"',
}


def test_mypy_passes_on_user_code_and_rejects_misuse(tmp_path):
    misuse = tmp_path / "misuse.py"
    misuse.write_text("import optxform\n" + "\n".join(MISUSES) + "\n")
    result = _mypy(
        "--strict", "--follow-imports=silent", "--disallow-untyped-calls",
        str(ROOT / "tests" / "typing_usage.py"), str(misuse),
    )
    output = result.stdout + result.stderr
    assert "typing_usage.py" not in output, output
    errors = [line for line in output.splitlines() if ": error:" in line]
    for number, expected in enumerate(MISUSES.values(), start=2):
        assert any(f"misuse.py:{number}:" in line and expected in line for line in errors), (
            f"mypy accepted line {number} of the misuse file:\n{output}")
    assert len(errors) == len(MISUSES), output
