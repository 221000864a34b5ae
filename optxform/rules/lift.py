"""The one lifting from a declared :class:`Rule` to an optax-compatible transform.

``lift(rule, **arguments)`` validates the arguments against the declaration and returns a
``GradientTransformation`` whose

* ``init`` builds the rule's typed state: an int32 step counter, each buffer as a tree
  like the params in its storage dtype (each leaf shaped like its param, or as the
  buffer's ``shape`` says), each scalar;
* ``update`` advances the counter (saturating), evaluates schedules at the step,
  computes the rule's per-step scalars once, then maps the rule's ``leaf`` over the
  params. On each leaf it handles, for every rule alike:

  - ``None`` gradient leaves (partial gradients): passed through, state untouched;
  - dtypes: the math runs in float32 or wider, updates leave in the gradient's dtype,
    buffers are stored in their declared storage dtype, or in a storage policy
    (:class:`~optxform.tree.quantize.StateStorage`: bfloat16 with stochastic rounding,
    8-bit blocks) given where the dtype option is: decoded to the compute dtype before the
    math, encoded after it, so the state never holds a float32 copy;
  - complex params: torch's convention, real and imaginary parts as separate elements
    (``torch.view_as_real``); buffers of a complex param are stored as that real view,
    and a global rule's ``reduce`` sees complex updates and params as real views too;
  - masks: where a masked rule's mask is False the update passes unchanged;
  - a global rule's first pass (``accumulate``), whose per-leaf sums are added over the
    tree before ``per_step``, and whose updated buffers the second pass (``leaf``) reads;
  - tracing cost: inside a jitted step, leaves of one shape and dtype share one traced
    copy of the math (XLA inlines it, so the compiled step is unchanged), and a tree of a
    thousand leaves traces the math a few times rather than a thousand.

The transform's ``update`` carries its declaration (:func:`declaration_of`), which
``packed``, ``inject_hyperparams`` and the state tools read instead of guessing.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from optxform import tree as otu
from optxform.core import GradientTransformation
from optxform.core.counters import increment, zero_count
from optxform.core.schedule import value_at
from optxform.core.trees import path_to_str, require_params
from optxform.core.validation import check_dtype, check_hyperparameter
from optxform.rules.rule import Buffer, Leaf, Rule, Scalar, Step
from optxform.tree.masks import resolve_mask
from optxform.tree.numerics import is_zero, step_dtype
from optxform.tree.quantize import StateStorage, as_storage, leaf_key

__all__ = ["Declaration", "declaration_of", "kinds_of", "lift", "moment_storage"]

_is_none = lambda x: x is None  # noqa: E731

_DEFAULT_STORAGE: contextvars.ContextVar = contextvars.ContextVar("moment_storage",
                                                                  default=None)


@contextlib.contextmanager
def moment_storage(storage: Any) -> Iterator[None]:
    """Within the block, rules lifted with a dtype option left at ``None`` (``mu_dtype``,
    ``nu_dtype``: the moment buffers) store those buffers in ``storage`` (a dtype, a
    :class:`~optxform.tree.quantize.StateStorage` or its name). Read at construction;
    :func:`optxform.low_memory` is the public form."""
    token = _DEFAULT_STORAGE.set(as_storage(storage))
    try:
        yield
    finally:
        _DEFAULT_STORAGE.reset(token)


@dataclasses.dataclass(frozen=True)
class Declaration:
    """A lifted rule with the values it was built from (read by wrappers and layouts)."""

    rule: Rule
    values: dict        # hyperparameter name -> value as given (number, array, schedule)
    options: dict       # static option name -> value


def declaration_of(tx: GradientTransformation) -> Declaration | None:
    """The declaration behind a transform built by :func:`lift` (``None`` for others)."""
    return getattr(tx.update, "declaration", None)


def kinds_of(tx: GradientTransformation) -> frozenset:
    """The kinds of the rules inside ``tx``: ``"elementwise"``, ``"matrix"``, ``"global"``,
    and ``"unknown"`` for a member that declares nothing (a transform from elsewhere).

    Combinators record their members as ``update.parts`` (``chain``, ``named_chain`` and
    optxform's wrappers do); a transform with no members is elementwise. A wrapper whose
    own math is not elementwise records its kind as ``update.kind`` (``cautious``: a mean
    over each leaf is ``"matrix"``).
    """
    declaration = declaration_of(tx)
    if declaration is not None:
        return frozenset({declaration.rule.kind})
    parts = getattr(tx.update, "parts", None)
    if parts is None:
        return frozenset({"unknown"})
    own = getattr(tx.update, "kind", "elementwise")
    return frozenset({own}).union(*(kinds_of(p) for p in parts))


def _bind(rule: Rule, arguments: dict) -> tuple[dict, dict]:
    known = set(rule.hyperparameter_names) | set(rule.options) | set(rule.dtype_options)
    if rule.masked:
        known.add("mask")
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise ValueError(f"{rule.name}: unknown argument {unknown[0]!r} "
                         f"(it takes {', '.join(sorted(known))})")
    values = {}
    for h in rule.hyperparameters:
        if h.name not in arguments:
            raise ValueError(f"{rule.name}: missing hyperparameter {h.name!r}")
        value = arguments[h.name]
        if value is None and h.optional:
            values[h.name] = None
            continue
        check_hyperparameter(h.name, value, schedule=h.schedule)
        if h.check is not None:
            h.check(h.name, value)
        values[h.name] = value
    options = {name: arguments.get(name) for name in known - set(values)}
    for name in rule.dtype_options:
        given = options[name] if options[name] is not None else _DEFAULT_STORAGE.get()
        options[name] = as_storage(given)
        if not isinstance(options[name], StateStorage):
            check_dtype(name, options[name])
    return values, options


def _real_dtype(dtype) -> Any:
    dtype = jnp.dtype(dtype)
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype


def _computable(buffer, dtype):
    """A floating buffer leaf (or each array of a tuple leaf) in the compute dtype; flags
    (bool) and ``None`` as they are."""
    def one(b):
        return b.astype(dtype) if jnp.issubdtype(b.dtype, jnp.floating) else b

    return None if buffer is None else jax.tree.map(one, buffer)


@dataclasses.dataclass(frozen=True)
class _Codec:
    """How one buffer's leaves are stored: cast to a dtype, or a storage policy.

    A policy's random draws (stochastic rounding) are keyed by the rule's name, the
    leaf's path, the step and the buffer's index (``stream``).
    """

    buffer: Buffer
    storage: StateStorage | None
    stream: int

    @property
    def signed(self) -> bool:
        return not self.buffer.non_negative

    def decode(self, stored: Any, like: jax.Array, dtype: Any) -> Any:
        """The stored leaf in ``dtype``, shaped and laid out for the update ``like``."""
        if self.storage is None or stored is None:
            # A buffer the rule builds itself (``make``) reaches it in its storage dtype.
            return stored if self.buffer.make is not None else _computable(stored, dtype)
        shape = (like.shape if self.buffer.shape is None
                 else tuple(self.buffer.shape(tuple(like.shape))))
        return _laid_out_like(self.storage.decode(stored, shape, dtype), like)

    def encode(self, value: jax.Array, old: Any, where: str, t: jax.Array) -> Any:
        if self.storage is None:  # an array, or a tuple of arrays (``make``)
            return jax.tree.map(lambda n, o: n.astype(o.dtype), value, old)
        key = leaf_key(where, t, self.stream) if self.storage.stochastic else None
        return self.storage.encode(value, self.signed, key)


def _laid_out_like(x: jax.Array, like: jax.Array) -> jax.Array:
    """``x`` in the sharding of ``like`` where a mesh with explicit axes makes a decoded
    buffer's layout (that of its blocks) differ from the update's."""
    want = jax.typeof(like).sharding
    mesh = getattr(want, "mesh", None)
    if (mesh is None or mesh.empty or x.shape != like.shape
            or jax.typeof(x).sharding == want):
        return x
    return jax.sharding.reshard(x, want)


def _codecs(rule: Rule, options: dict) -> dict:
    """Each buffer's :class:`_Codec` (a policy where its dtype option holds one)."""
    out = {}
    for stream, b in enumerate(rule.buffers):
        value = options.get(b.dtype_option) if b.dtype_option else None
        out[b.name] = _Codec(b, value if isinstance(value, StateStorage) else None, stream)
    return out


def _storage(rule: Rule, options: dict):
    """``(shape, dtype)`` of each buffer's leaf for a param leaf (the dtype may be a
    :class:`~optxform.tree.quantize.StateStorage` policy)."""

    def of(buffer, p):
        dtype = _real_dtype(p.dtype)
        shape = tuple(jnp.shape(p)) + ((2,) if jnp.iscomplexobj(p) else ())
        if buffer.shape is not None:
            shape = tuple(buffer.shape(shape))
        override = options.get(buffer.dtype_option) if buffer.dtype_option else None
        if buffer.storage == "flag":
            return (), jnp.dtype(jnp.bool_)
        if isinstance(override, StateStorage):
            return shape, override
        if override is not None:
            return shape, jnp.dtype(override)
        if buffer.storage == "accumulator":
            return shape, otu.at_least_float32(dtype)
        return shape, dtype

    return of


def lift(rule: Rule, **arguments) -> GradientTransformation:
    """A ``GradientTransformation`` running ``rule`` with the given arguments.

    Raises ``ValueError`` at construction for an unknown argument, a missing or invalid
    hyperparameter, or an invalid storage dtype.
    """
    values, options = _bind(rule, arguments)
    zero = frozenset(name for name, value in values.items() if is_zero(value))
    enabled = [b for b in rule.buffers if b.enabled_by is None or options[b.enabled_by]]
    storage_of = _storage(rule, options)
    codecs = _codecs(rule, options)
    mask = options.get("mask")
    neutral = rule.neutral_when_zero is not None and rule.neutral_when_zero in zero

    def init(params):
        _check_shapes(rule, params, options)
        state = {b.name: None for b in rule.buffers}
        for b in enabled:
            fill = 0.0 if b.fill is None else values[b.fill]
            if callable(fill):  # a schedule: its value at step 0
                fill = value_at(fill, zero_count())

            def make(path, p, b=b, fill=fill):
                if p is None:
                    return None
                shape, dtype = storage_of(b, p)
                policy = isinstance(dtype, StateStorage)
                if policy and not b.from_params and is_zero(fill):
                    return dtype.zeros(shape, codecs[b.name].signed)
                wide = otu.at_least_float32(_real_dtype(p.dtype)) if policy else dtype
                if b.from_params:
                    value = otu.real_view(jnp.asarray(p)).astype(wide).reshape(shape)
                elif b.make is not None:
                    value = b.make(shape, wide, options)
                else:
                    value = jnp.full(shape, fill, wide)
                if not policy:
                    return value
                return codecs[b.name].encode(value, None, _where(rule, path), zero_count())

            state[b.name] = jax.tree_util.tree_map_with_path(make, params, is_leaf=_is_none)
        for s in rule.scalars:
            state[s.name] = _initial_scalar(s, values)
        if rule.counts_steps:
            state["count"] = zero_count()
        return rule.state(**state)

    def update(updates, state, params=None, **extra):
        del extra
        count = state.count if rule.counts_steps else zero_count()
        t = increment(count)
        if neutral:
            return updates, (state._replace(count=t) if rule.counts_steps else state)
        if rule.reads_params:
            require_params(params, updates, rule.name)
        h = {name: value_at(value, count) if callable(value) else value
             for name, value in values.items()}
        carried = {s.name: getattr(state, s.name) for s in rule.scalars}
        reduced = ({} if rule.reduce is None else
                   rule.reduce(otu.tree_map(otu.real_view, updates),
                               None if params is None else otu.tree_map(otu.real_view, params),
                               h))
        flat_updates, treedef = jax.tree_util.tree_flatten_with_path(updates,
                                                                     is_leaf=_is_none)
        paths = [path for path, _ in flat_updates]
        flat_g = [g for _, g in flat_updates]
        flat_buffers = {b.name: treedef.flatten_up_to(getattr(state, b.name))
                        for b in enabled}
        flat_p = treedef.flatten_up_to(params) if rule.reads_params else [None] * len(flat_g)
        flat_mask = (treedef.flatten_up_to(resolve_mask(
            mask, params if params is not None else updates, f"{rule.name}: the mask",
            elementwise=rule.kind == "elementwise"))
            if rule.masked and mask is not None else [True] * len(flat_g))

        if rule.accumulate is not None:
            first_pass = _leaf_runner(
                rule, lambda g, old, p, s, path: rule.accumulate(
                    _leaf_input(rule, g, old, p, s, options, zero, path, codecs)[0]),
                _ScalarsByDtype(rule.prepare(Step(t, count, h, carried, reduced, options))
                                if rule.prepare is not None else dict(h)), flat_g)
            sums = {}
            for i, g in enumerate(flat_g):
                if g is None or flat_mask[i] is False:
                    continue
                old = {name: leaves[i] for name, leaves in flat_buffers.items()}
                new, parts = first_pass(g, old, flat_p[i], paths[i])
                for name, value in new.items():
                    flat_buffers[name][i] = codecs[name].encode(value, old[name],
                                                                _where(rule, paths[i]), t)
                for name, value in parts.items():
                    value = jnp.asarray(value).astype(step_dtype())
                    sums[name] = value if name not in sums else sums[name] + value
            reduced = {**reduced, **sums}

        if rule.per_step is not None:
            scalars, carried = rule.per_step(Step(t, count, h, carried, reduced, options))
        else:
            scalars = dict(h)

        scalars_in = _ScalarsByDtype(scalars)  # each scalar cast once per compute dtype
        one = _leaf_runner(rule, lambda g, old, p, s, path: _one_leaf(
            rule, g, old, p, s, options, zero, path, codecs), scalars_in, flat_g)
        out_u, out_buffers = list(flat_g), {name: list(leaves)
                                            for name, leaves in flat_buffers.items()}
        for group in _leaf_groups(rule, flat_g, flat_mask):
            old = [{name: leaves[i] for name, leaves in flat_buffers.items()} for i in group]
            args = ([flat_g[i] for i in group], old, [flat_p[i] for i in group])
            if len(group) == 1:
                results = [one(*(a[0] for a in args), paths[group[0]])]
            else:  # one call of the leaf math over the stacked leaves
                stacked = [jax.tree.map(lambda *xs: jnp.stack(xs), *a) for a in args[:2]]
                ps = None if args[2][0] is None else jnp.stack(args[2])
                u, new = jax.vmap(lambda g, o, p: _one_leaf(
                    rule, g, o, p, scalars_in, options, zero, paths[group[0]], codecs)
                )(*stacked, ps)
                results = [(u[k], {name: b[k] for name, b in new.items()})
                           for k in range(len(group))]
            for i, (u, new) in zip(group, results):
                old = flat_buffers
                if flat_mask[i] is not True:  # a packed buffer of selected and other leaves
                    real_g = otu.real_view(jnp.asarray(flat_g[i]))
                    kept = {n: codecs[n].decode(old[n][i], real_g, new[n].dtype)
                            for n in new}
                    u, new = _select(flat_mask[i], (u, new), (flat_g[i], kept))
                out_u[i] = u
                for name, leaf in new.items():
                    out_buffers[name][i] = codecs[name].encode(leaf, old[name][i],
                                                               _where(rule, paths[i]), t)

        new_state = {b.name: None for b in rule.buffers}
        for b in enabled:
            new_state[b.name] = jax.tree_util.tree_unflatten(treedef, out_buffers[b.name])
        new_state.update({s.name: jnp.asarray(carried[s.name]).astype(s.storage_dtype())
                          for s in rule.scalars})
        if rule.counts_steps:
            new_state["count"] = t
        return jax.tree_util.tree_unflatten(treedef, out_u), rule.state(**new_state)

    update.declaration = Declaration(rule, values, options)
    return GradientTransformation(init, update)


def _leaf_runner(rule: Rule, math: Callable, scalars: _ScalarsByDtype,
                 leaves: list) -> Callable:
    """``run(g, old, p, path)``: ``math(g, old, p, scalars, path)`` on one of ``leaves``
    (``scalars``: the step's, cast once per compute dtype).

    Inside a trace (a jitted step), leaves that share their shape and dtype with another
    share one jitted program of ``math``, unless the rule reads the leaf's path: a tree of
    a thousand leaves of a few shapes then traces and lowers the math a few times rather
    than a thousand. XLA inlines the calls, so the compiled step is the one a trace leaf
    by leaf gives. Per-step scalars known as numbers stay constants of the program (the
    math still branches on them while tracing); traced ones are its arguments. A leaf of
    its own shape, and every leaf outside a trace, runs ``math`` inline.
    """
    def inline(g, old, p, path):
        return math(g, old, p, scalars, path)

    signatures = collections.Counter(jax.typeof(g) for g in leaves
                                     if isinstance(g, jax.core.Tracer))
    repeated = {signature for signature, n in signatures.items() if n > 1}
    if rule.reads_path or not repeated:
        return inline
    dynamic = {name: v for name, v in scalars.scalars.items() if isinstance(v, jax.Array)}
    known = {name: v for name, v in scalars.scalars.items() if name not in dynamic}

    def program(g, old, p, dynamic):
        return math(g, old, p, _ScalarsByDtype({**known, **dynamic}), ())

    program.__name__ = rule.name  # the name profiles and HLO dumps show
    shared = jax.jit(program)

    def run(g, old, p, path):
        if not isinstance(g, jax.core.Tracer) or jax.typeof(g) not in repeated:
            return inline(g, old, p, path)
        _check_complex(rule, g, path)  # named here: the program does not see the path
        return shared(g, old, p, dynamic)

    return run


def _leaf_groups(rule: Rule, flat_g: list, flat_mask: list) -> list[list[int]]:
    """The leaf indices the rule runs on, one list per call of its leaf math.

    One index per call, unless the rule batches same-shape leaves: then the leaves of one
    shape, dtype and explicit sharding (selected whole by the mask) share a call, in their
    tree order.
    """
    active = [i for i, g in enumerate(flat_g) if g is not None and flat_mask[i] is not False]
    if not rule.batch_same_shapes:
        return [[i] for i in active]
    groups: dict = {}
    for i in active:
        key = ((jnp.shape(flat_g[i]), jnp.result_type(flat_g[i]), _explicit_spec(flat_g[i]))
               if flat_mask[i] is True else ("own", i))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _explicit_spec(x) -> Any:
    """The partition spec of ``x`` over explicit mesh axes (``None`` otherwise): leaves
    laid out differently cannot be stacked into one batch."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = getattr(sharding, "spec", None)
    return None if spec is None else tuple(spec)


def _check_shapes(rule: Rule, params: Any, options: dict) -> None:
    """``ValueError`` naming the first param whose shape the rule does not take."""
    if rule.check_shape is None:
        return
    for path, p in jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]:
        if p is None:
            continue
        reason = rule.check_shape(tuple(jnp.shape(p)), options)
        if reason is not None:
            raise ValueError(f"{rule.name}: param {path_to_str(path)!r} of shape "
                             f"{tuple(jnp.shape(p))} {reason}")


def _select(flags, chosen, other):
    """Elementwise ``chosen`` where ``flags`` else ``other`` (trees; ``flags`` 1-D)."""
    flags = jnp.asarray(flags)

    def pick(a, b):
        mask = flags.reshape(flags.shape + (1,) * (jnp.ndim(a) - flags.ndim))
        return jnp.where(mask, a, b)

    return jax.tree.map(pick, chosen, other)


def _nan_where_state_overflowed(u: jax.Array, new: dict) -> jax.Array:
    """``u``, NaN wherever a new accumulator value shaped like it is not finite.

    An overflow in the state (a squared gradient of 3e37 is inf in float32) makes the step
    non-finite whatever the compiler does next: eagerly ``inf - inf`` gives NaN, while a
    fused, rewritten kernel under ``jit`` may give a finite number for the same element.
    Marking the step NaN here gives one outcome both ways, which ``apply_if_finite`` and
    the user can see. Accumulators (sums and averages of squares) are where an overflow
    first shows; the check is elementwise, so XLA fuses it into the update's own kernel.
    """
    for value in new.values():
        if (isinstance(value, jax.Array) and jnp.shape(value) == jnp.shape(u)
                and jnp.issubdtype(value.dtype, jnp.floating)):
            u = jax.lax.select(jnp.isfinite(value), u, jax.lax.full_like(u, jnp.nan))
    return u


class _ScalarsByDtype:
    """The step's scalars cast to a compute dtype, once per dtype rather than once per leaf
    (a thousand leaves would otherwise trace a thousand copies of every cast)."""

    def __init__(self, scalars: dict):
        self.scalars, self.cast = scalars, {}

    def __call__(self, dtype) -> dict:
        key = jnp.dtype(dtype)
        if key not in self.cast:
            self.cast[key] = {name: _cast_scalar(v, key) for name, v in self.scalars.items()}
        return self.cast[key]


def _initial_scalar(scalar: Scalar, values: dict) -> jax.Array:
    """A :class:`Scalar`'s value in a fresh state (its ``fill`` hyperparameter, or
    ``initial``), in its declared dtype."""
    value = scalar.initial if scalar.fill is None else values[scalar.fill]
    if callable(value):  # a schedule: its value at step 0
        value = value_at(value, zero_count())
    return jnp.asarray(value).astype(scalar.storage_dtype())


def _cast_scalar(v, dtype):
    """A per-step value in ``dtype``; ``None``, and integer, bool or key arrays, as they are
    (a step's PRNG key, a counter)."""
    if v is None or (isinstance(v, jax.Array) and not jnp.issubdtype(v.dtype, jnp.floating)):
        return v
    if isinstance(v, (int, float, np.number, np.ndarray)) and not isinstance(v, bool):
        # a known value stays known (numpy, not traced): the leaf math can branch on it
        # while tracing, and each use is a constant rather than a traced cast
        with np.errstate(over="ignore"):  # a number beyond the dtype's range is inf, as in jnp
            return np.asarray(v, dtype)
    return jnp.asarray(v).astype(dtype)


def _where(rule: Rule, path) -> str:
    """The name keying a leaf's random draws: the rule's name and the leaf's path."""
    return f"{rule.name}:{path_to_str(path)}"


def _check_complex(rule: Rule, g, path) -> None:
    """``ValueError`` naming the param where a complex leaf meets a rule that rejects them."""
    if jnp.iscomplexobj(g) and rule.complex_params == "reject":
        raise ValueError(f"{rule.name} does not support complex params (param "
                         f"{path_to_str(path)!r} is {jnp.result_type(g)})")


def _leaf_input(rule: Rule, g, old: dict, p, scalars: _ScalarsByDtype, options: dict,
                zero: frozenset, path, codecs: dict) -> tuple[Leaf, jax.Array]:
    """The :class:`Leaf` a rule's per-leaf math sees, and the incoming update's real view."""
    g = jnp.asarray(g)
    _check_complex(rule, g, path)
    real_g = otu.real_view(g)
    dtype = otu.at_least_float32(real_g.dtype)
    leaf = Leaf(
        g=real_g.astype(dtype),
        buffers={name: codecs[name].decode(b, real_g, dtype) for name, b in old.items()},
        s=scalars(dtype),
        p=None if p is None else otu.real_view(jnp.asarray(p)).astype(dtype),
        opt=options, zero=zero, dtype=real_g.dtype, path=tuple(path))
    return leaf, real_g


def _one_leaf(rule: Rule, g, old: dict, p, scalars: _ScalarsByDtype, options: dict,
              zero: frozenset, path, codecs: dict) -> tuple[Any, dict]:
    """The rule's update of one leaf and its new buffers, in the compute dtype (the
    caller stores them)."""
    is_complex = jnp.iscomplexobj(g)
    leaf, real_g = _leaf_input(rule, g, old, p, scalars, options, zero, path, codecs)
    u, new = rule.leaf(leaf)
    u = _nan_where_state_overflowed(u, {b.name: new[b.name] for b in rule.buffers
                                        if b.storage == "accumulator" and b.name in new})
    u = u.astype(real_g.dtype)
    if is_complex:
        u = otu.complex_from_real_view(u)
    return u, {name: new[name] for name in old}
