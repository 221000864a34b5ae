"""Every public name documents itself fully, and every docstring example runs as printed.

A public function's docstring has its arguments (``Args:``), what it returns
(``Returns:``) and an example in doctest form; a public class an example, or, for a
state NamedTuple (the pytrees that ``init`` returns), its fields (``Attributes:``).
The examples run here with :mod:`doctest` and must print what they show.
"""

from __future__ import annotations

import doctest
import inspect

import pytest

import optxform

PUBLIC = [name for name in optxform.__all__ if not name.startswith("__")]
CALLABLES = [name for name in PUBLIC if inspect.isfunction(getattr(optxform, name))
             or inspect.isclass(getattr(optxform, name))]


def _is_state(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields") and ">>>" not in (cls.__doc__ or "")


def _parameters(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("name", CALLABLES)
def test_docstring_has_args_returns_and_example(name):
    obj = getattr(optxform, name)
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    if inspect.isclass(obj):
        if _is_state(obj):
            assert "Attributes:" in doc, f"state {name} lists no Attributes"
        else:
            assert ">>>" in doc, f"class {name} has no example"
        return
    if _parameters(obj):
        assert "Args:" in doc, f"{name} documents no Args"
    assert "Returns:" in doc or "Yields:" in doc, f"{name} has no Returns section"
    assert ">>>" in doc, f"{name} has no example"


@pytest.mark.parametrize("name", [n for n in CALLABLES
                                  if ">>>" in (inspect.getdoc(getattr(optxform, n)) or "")])
def test_docstring_example_runs_as_printed(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    obj = getattr(optxform, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, name, globs={"optxform": optxform})
    assert tests and tests[0].examples
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
