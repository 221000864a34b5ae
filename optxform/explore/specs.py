"""Naming optimizers: ``"adam:lr=0.1"`` -> an :class:`OptimizerSpec` -> a transform.

The explore tools take optimizers as *specs* rather than built transforms, because racing
them needs to rebuild them with other hyperparameters (a learning-rate grid, or several
settings of one alias stacked and ``vmap``-ed). A spec is an alias name plus keyword
arguments; it can be written as a string::

    adam                         optxform.adam()
    adam:lr=0.1                  optxform.adam(learning_rate=0.1)   (lr is short for it)
    sgd:lr=0.01,momentum=0.9     optxform.sgd(learning_rate=0.01, momentum=0.9)
    rprop:etas=(0.4,1.3)         values are Python literals; true/false/none also work

Besides the aliases there are a few presets: ``momentum`` (SGD with momentum 0.9),
``nesterov`` (SGD, Nesterov momentum 0.9) and ``amsgrad`` (Adam with ``amsgrad=True``).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
from typing import Any, Callable, Iterable, Mapping

from optxform import optimizers as _optimizers
from optxform.core import GradientTransformation, ScalarOrSchedule

__all__ = ["OptimizerSpec", "optimizer_names", "parse_optimizer", "parse_optimizers"]

# The aliases the explore tools know, in the order they are listed.
_ALIASES = ("sgd", "asgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "adamax",
            "nadam", "radam", "rprop", "sparse_adam", "adafactor", "lion", "lbfgs",
            # beyond torch.optim's original set
            "muon_with_adamw", "schedule_free_adamw", "schedule_free_sgd", "prodigy",
            "dadapt_adam", "dadapt_sgd", "adopt", "ademamix", "mars", "adan", "adabelief",
            "cautious_adamw", "soap", "shampoo", "kron")
_PRESETS: dict[str, tuple[str, dict]] = {
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "amsgrad": ("adam", {"amsgrad": True}),
}
_SHORT_NAMES = {"lr": "learning_rate"}


def _alias_function(name: str) -> Callable[..., GradientTransformation] | None:
    fn = getattr(_optimizers, name, None)
    # While an alias is not written yet, the package attribute is its (empty) module.
    if fn is None or isinstance(fn, types.ModuleType) or not callable(fn):
        return None
    return fn


def optimizer_names() -> list[str]:
    """The optimizer names a spec may start with (aliases available now, then presets).

    Returns:
      The alias names (``"sgd"``, ``"adam"``, ...) followed by the presets ``"momentum"``
        (SGD with momentum 0.9), ``"nesterov"`` and ``"amsgrad"``.

    Example::

        >>> import optxform
        >>> names = optxform.optimizer_names()
        >>> names[:2], names[-3:]
        (['sgd', 'asgd'], ['momentum', 'nesterov', 'amsgrad'])
    """
    names = [n for n in _ALIASES if _alias_function(n) is not None]
    return names + [p for p, (alias, _) in _PRESETS.items() if alias in names]


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown optimizer {name!r}; known optimizers: "
                      f"{', '.join(optimizer_names())}")


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by name: ``name`` (an alias or a preset) and keyword ``options``.

    ``options`` override the preset's. Build the transform with :meth:`build`, optionally
    overriding options again (``spec.build(learning_rate=lr)``).

    Attributes:
      name: an alias (``"adam"``) or a preset (``"momentum"``), see :func:`optimizer_names`.
      options: keyword arguments of the alias (``lr`` is short for ``learning_rate``).
      label: how tables and plots name it; by default the name and its options.

    Example::

        >>> import optxform
        >>> spec = optxform.OptimizerSpec("momentum", {"lr": 0.1})
        >>> spec.label, spec.alias, spec.kwargs()
        ('momentum(lr=0.1)', 'sgd', {'momentum': 0.9, 'learning_rate': 0.1})
        >>> tx = spec.build(learning_rate=0.2)  # optxform.sgd(0.2, momentum=0.9)
    """

    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label: str | None = None

    def __post_init__(self):
        if self.name not in _PRESETS and self.name not in _ALIASES:
            raise _unknown(self.name)
        options = {_SHORT_NAMES.get(k, k): v for k, v in dict(self.options).items()}
        object.__setattr__(self, "options", types.MappingProxyType(options))
        if self.label is None:
            object.__setattr__(self, "label", _default_label(self.name, options))

    @property
    def alias(self) -> str:
        """The optxform alias behind the name (``momentum`` -> ``sgd``)."""
        return _PRESETS[self.name][0] if self.name in _PRESETS else self.name

    @property
    def factory(self) -> Callable[..., GradientTransformation]:
        """The alias function, ``optxform.<alias>`` (``ValueError`` if it is not available)."""
        fn = _alias_function(self.alias)
        if fn is None:
            raise _unknown(self.name)
        return fn

    def kwargs(self, **override: Any) -> dict:
        """The alias's keyword arguments: the preset's, then ``options``, then ``override``."""
        preset = dict(_PRESETS[self.name][1]) if self.name in _PRESETS else {}
        return {**preset, **self.options, **override}

    @property
    def learning_rate(self) -> ScalarOrSchedule | None:
        """The learning rate set in the spec, or ``None`` (the alias default)."""
        return self.kwargs().get("learning_rate")

    def with_options(self, **options: Any) -> "OptimizerSpec":
        """A copy with more options (the label is recomputed unless it was custom)."""
        merged = {**self.options, **{_SHORT_NAMES.get(k, k): v for k, v in options.items()}}
        custom = self.label != _default_label(self.name, dict(self.options))
        return OptimizerSpec(self.name, merged, self.label if custom else None)

    def build(self, **override: Any) -> GradientTransformation:
        """``optxform.<alias>(**self.kwargs(**override))``; a bad option raises ValueError."""
        factory = self.factory
        kwargs = self.kwargs(**override)
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}
        unknown = [k for k in kwargs if parameters and k not in parameters]
        if unknown:
            raise ValueError(f"optimizer {self.alias!r} has no option {unknown[0]!r}; its "
                             f"options are: {', '.join(parameters)}")
        return factory(**kwargs)


def _format_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(
        value, str) else str(value)


def _default_label(name: str, options: Mapping[str, Any]) -> str:
    if not options:
        return name
    shown = ", ".join(f"{'lr' if k == 'learning_rate' else k}={_format_value(v)}"
                      for k, v in options.items())
    return f"{name}({shown})"


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_WORDS = {"true": True, "false": False, "none": None}


def _parse_value(text: str, key: str, spec: str):
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"optimizer spec {spec!r}: cannot read the value of {key!r} "
                         f"({text!r}); write a number, true/false, none or a tuple") from None


def parse_optimizer(spec: str | OptimizerSpec) -> OptimizerSpec:
    """Read ``"name[:key=value,...]"``; an :class:`OptimizerSpec` passes through.

    ``name`` is one of :func:`optimizer_names`; values are Python literals (numbers,
    tuples, quoted strings) or ``true``/``false``/``none``; ``lr`` is short for
    ``learning_rate``.

    Args:
      spec: a string such as ``"sgd:lr=0.01,momentum=0.9"``, or a spec.

    Returns:
      The :class:`OptimizerSpec`, checked by building its transform once.

    Raises:
      ValueError: for an unknown name (listing the known ones), a malformed option, or an
        option the alias rejects.
      TypeError: when ``spec`` is neither a string nor a spec.

    Example::

        >>> import optxform
        >>> spec = optxform.parse_optimizer("sgd:lr=0.01,momentum=0.9")
        >>> spec.name, dict(spec.options), spec.label
        ('sgd', {'learning_rate': 0.01, 'momentum': 0.9}, 'sgd(lr=0.01, momentum=0.9)')
    """
    if isinstance(spec, OptimizerSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"an optimizer is a name like 'adam:lr=0.1' or an OptimizerSpec, "
                        f"got {type(spec).__name__}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in optimizer_names():
        raise _unknown(name)
    options = {}
    for item in _split_top_level(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"optimizer spec {spec!r}: expected key=value, got {item!r}")
        options[key.strip()] = _parse_value(value.strip(), key.strip(), spec)
    parsed = OptimizerSpec(name, options)
    parsed.build()  # validate the options now, with the alias's own error messages
    return parsed


def parse_optimizers(specs: Iterable[str | OptimizerSpec]) -> list[OptimizerSpec]:
    """:func:`parse_optimizer` for each; labels made unique (``adam``, ``adam#2``).

    Args:
      specs: strings or :class:`OptimizerSpec` s.

    Returns:
      A list of specs in the order given; a label seen before gets ``#2``, ``#3``, ...

    Raises:
      ValueError: for an empty list, or a spec :func:`parse_optimizer` rejects.

    Example::

        >>> import optxform
        >>> [spec.label for spec in optxform.parse_optimizers(["adam", "adam", "sgd:lr=0.1"])]
        ['adam', 'adam#2', 'sgd(lr=0.1)']
    """
    parsed = [parse_optimizer(s) for s in specs]
    if not parsed:
        raise ValueError("no optimizers given")
    seen: dict[str, int] = {}
    unique = []
    for spec in parsed:
        seen[spec.label] = seen.get(spec.label, 0) + 1
        if seen[spec.label] > 1:
            spec = dataclasses.replace(spec, label=f"{spec.label}#{seen[spec.label]}")
        unique.append(spec)
    return unique
