"""An update rule, declared as data: what it reads, what it keeps, and its per-leaf math.

A :class:`Rule` says everything about an update rule that code outside its math needs:

* ``kind``: ``"elementwise"`` (each element on its own: packing leaves together changes
  nothing), ``"matrix"`` (needs each leaf's shape: factored moments, row masks; never
  packed across leaves) or ``"global"`` (a reduction over the whole tree first, such as a
  global norm, then elementwise);
* its ``hyperparameters`` (numbers, scalar arrays or, where allowed, schedules), each with
  the check that validates it at construction;
* its per-param state ``buffers`` with their storage dtypes, and scalar state;
* its static ``options`` (flags that choose code paths or add buffers);
* whether it reads the params, and whether it takes a mask;
* ``neutral_when_zero``: a hyperparameter that, as the number 0, makes the rule pass
  updates through unchanged without reading params (weight decay 0): the member stays in
  its chain, so the state's structure does not depend on the value;
* ``per_step``: the scalars it needs once per step (bias corrections, ...);
* ``leaf``: the per-leaf math, a pure function of one :class:`Leaf`;
* for "matrix" rules, ``check_shape`` (which param shapes it takes: a refused param is a
  ``ValueError`` naming its path) and ``batch_same_shapes`` (leaves of one shape and dtype
  run as one batched call of ``leaf``, as Muon's Newton-Schulz of many equal matrices);
* ``reads_path``: the per-leaf math reads ``Leaf.path`` (randomness keyed by the param's
  name). Other rules' math is traced once per leaf shape and dtype and shared by every
  leaf of that signature;
* for a global rule whose reduction runs over its *updated* state (D-Adaptation's and
  Prodigy's step size ``d`` comes from sums over the new moments): ``prepare``, the
  scalars of a first pass, and ``accumulate``, that first pass over the leaves, which
  updates buffers and returns per-leaf sums that reach ``per_step`` added over the tree.

:func:`optxform.rules.lift` turns a rule and its argument values into a
``GradientTransformation``; the tree mapping, the step counter, storage dtypes, complex
params, ``None`` leaves and masks are handled there, once, for every rule.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optxform.core.validation import check_non_negative, check_range
from optxform.tree.numerics import step_dtype

__all__ = ["Buffer", "Hyperparameter", "Kind", "Leaf", "Rule", "Scalar", "Step", "beta",
           "non_negative"]

Kind = Literal["elementwise", "matrix", "global"]


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A numeric argument: validated at construction, kept at float32 or wider.

    ``check(name, value)`` raises ``ValueError`` naming ``name`` for a bad concrete value;
    ``schedule`` allows a callable ``step -> value`` (learning rates); ``optional`` allows
    ``None``, which reaches ``per_step`` and ``leaf`` as ``None`` (an argument whose absence
    means a default the rule works out itself, or a feature turned off).
    """

    name: str
    check: Callable[[str, Any], None] | None = None
    schedule: bool = False
    optional: bool = False


def beta(name: str) -> Hyperparameter:
    """A decay rate in ``[0, 1)`` (Adam's ``b1``, ``b2``)."""
    return Hyperparameter(name, lambda n, v: check_range(n, v, 0.0, 1.0))


def non_negative(name: str) -> Hyperparameter:
    """A hyperparameter ``>= 0`` (``eps``, weight decay)."""
    return Hyperparameter(name, check_non_negative)


@dataclasses.dataclass(frozen=True)
class Buffer:
    """A state buffer with one leaf per param.

    ``storage``: ``"param"`` keeps the param's dtype (torch's ``exp_avg``);
    ``"accumulator"`` keeps float32 or wider (second-moment-like sums and averages: a
    float16 square overflows at 256); ``"flag"`` keeps one bool per leaf, a scalar
    whatever the param's shape (a per-leaf record such as "the last update held a NaN").
    ``dtype_option`` names the argument that overrides it (``mu_dtype``); ``fill`` names
    the hyperparameter holding its initial value (zeros otherwise; a schedule is read at
    step 0); ``enabled_by`` names the option that adds the buffer (``None`` otherwise).
    ``shape`` maps the param's shape (its real view's for a complex param) to the buffer
    leaf's shape, for a "matrix" rule whose state is not shaped like the param (Adafactor's
    row and column factors); ``None``: the param's shape. ``from_params``: the buffer
    starts as a copy of the param (a complex param's real view) in its storage dtype,
    rather than as ``fill`` (Schedule-Free's ``z``; the starting point :math:`x_0` that
    D-Adaptation measures distances from). ``non_negative``: the buffer's values are never
    negative (a second moment): a storage policy of 8-bit blocks uses the unsigned map for
    it, whose 256 codes are all non-negative (the signed map otherwise).
    ``make`` builds the buffer's initial leaf for a
    param instead (then ``fill`` and ``shape`` do not apply): ``make(shape, dtype,
    options)`` from the param's (real view's) shape, the storage dtype and the rule's
    static options, returning an array or a tuple of arrays (one Kronecker
    factor per axis, as PSGD-Kron keeps). A tuple leaf keeps its structure across updates;
    each of its arrays is stored in the storage dtype, and reaches ``leaf`` in it (not
    cast to the compute dtype: the rule chooses the dtype of its math).
    """

    name: str
    storage: Literal["param", "accumulator", "flag"] = "param"
    dtype_option: str | None = None
    fill: str | None = None
    enabled_by: str | None = None
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] | None = None
    from_params: bool = False
    non_negative: bool = False
    make: Callable[[tuple[int, ...], Any, dict], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Scalar:
    """A scalar kept in the state and advanced by ``per_step`` (NAdam's product).

    ``fill`` names the hyperparameter holding its initial value (``initial`` otherwise; a
    schedule is read at step 0). ``dtype``: ``"float32"``; ``"step"``, the dtype of step
    scalars (float64 under ``jax_enable_x64``, as a reference keeps a host float: a running
    sum, the D-Adaptation estimate ``d``); or ``"int32"`` (a count of the steps a rule
    took). ``per_step``'s value is stored in this dtype.
    """

    name: str
    initial: float = 0.0
    fill: str | None = None
    dtype: Literal["float32", "step", "int32"] = "float32"

    def storage_dtype(self) -> Any:
        return {"float32": jnp.float32, "step": step_dtype(), "int32": jnp.int32}[self.dtype]


class Step(NamedTuple):
    """What ``per_step`` sees once per update."""

    t: jax.Array        # int32: the step being taken (1 for the first update)
    count: jax.Array    # int32: updates made before this one (where schedules are read)
    h: dict             # hyperparameters: Python numbers as given, arrays, schedule values
    carried: dict       # the rule's Scalar state
    reduced: dict       # a global rule's reduction over the whole tree
    opt: dict           # static options


class Leaf(NamedTuple):
    """What ``leaf`` sees for one param: every floating array in the compute dtype.

    The compute dtype is float32, or the param's own dtype where wider. A complex param
    arrives as its real view (a trailing axis of 2: real and imaginary parts), as torch's
    ``view_as_real`` gives it. ``dtype`` is the dtype the update arrived in (the real
    dtype of a complex one), for constants that depend on it (a dtype's machine epsilon).
    Per-step values that ``per_step`` returns as integer, bool or PRNG-key arrays reach
    ``s`` as they are (only floating scalars are cast). ``path`` is the param's key path
    (the first leaf's for a batched call), for per-leaf randomness keyed by name.
    """

    g: jax.Array               # the incoming update
    buffers: dict              # name -> the buffer's leaf (None where not enabled; flags bool)
    s: dict                    # per-step scalars (and hyperparameters), compute dtype
    p: jax.Array | None        # the param, for rules that read params
    opt: dict                  # static options
    zero: frozenset            # hyperparameters given as the Python number 0
    dtype: Any                 # the incoming update's (real) dtype, before the upcast
    path: tuple = ()           # the param's key path


@dataclasses.dataclass(frozen=True)
class Rule:
    """One update rule; see the module docstring.

    A global rule's reduction reaches ``per_step`` as ``Step.reduced``, from two sources:
    ``reduce(updates, params, h)``, over the incoming tree; and ``accumulate``, a first
    pass over the leaves: each leaf (its ``s`` the scalars ``prepare(step)`` returns)
    gives ``(buffers, sums)``, the buffers it updates (stored in their storage dtype, and
    what ``leaf`` then reads) and per-leaf scalar sums, which are added over the leaves in
    the step dtype (float64 under ``jax_enable_x64``).
    """

    name: str
    kind: Kind
    state: type
    leaf: Callable[[Leaf], tuple[Any, dict]]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    buffers: tuple[Buffer, ...] = ()
    scalars: tuple[Scalar, ...] = ()
    options: tuple[str, ...] = ()
    per_step: Callable[[Step], tuple[dict, dict]] | None = None
    reduce: Callable[[Any, Any, dict], dict] | None = None
    prepare: Callable[[Step], dict] | None = None
    accumulate: Callable[[Leaf], tuple[dict, dict]] | None = None
    reads_params: bool = False
    counts_steps: bool = True
    masked: bool = False
    neutral_when_zero: str | None = None
    complex_params: Literal["real_view", "reject"] = "real_view"
    check_shape: Callable[[tuple[int, ...], dict], str | None] | None = None
    batch_same_shapes: bool = False
    reads_path: bool = False

    @property
    def hyperparameter_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hyperparameters)

    @property
    def dtype_options(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.dtype_option for b in self.buffers if b.dtype_option))
