"""to_optax: optxform transforms inside optax.chain, optax.named_chain and flax's TrainState
keep update's extra arguments (loss= for reduce_on_plateau, value=/value_fn= for lbfgs)
and give the same updates and states as optxform's own chain."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training.train_state import TrainState

import optxform
from optxform.core import to_optax


def quadratic(params):
    return jnp.sum((params["w"] - 3.0) ** 2) + jnp.sum((params["b"] + 1.0) ** 2)


PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}
# A loss that improves, then plateaus: with patience 1 and factor 0.5 the scale halves twice.
LOSSES = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0]


def _plateau():
    return optxform.reduce_on_plateau(factor=0.5, patience=1)


def _lbfgs():
    return optxform.lbfgs(line_search_fn="strong_wolfe", max_iter=3, history_size=4)


def _run(tx, steps, extra):
    """Params and states after each update of ``tx`` on ``quadratic``; ``extra(params,
    loss)`` gives the extra keyword arguments of an update (``loss``: from LOSSES)."""

    @jax.jit
    def step(params, state, loss):
        grads = jax.grad(quadratic)(params)
        updates, state = tx.update(grads, state, params, **extra(params, loss))
        return optxform.apply_updates(params, updates), state

    params, state = PARAMS, tx.init(PARAMS)
    trajectory = []
    for loss in LOSSES[:steps]:
        params, state = step(params, state, jnp.asarray(loss))
        trajectory.append((params, state))
    return trajectory


def _plateau_extra(params, loss):
    del params
    return {"loss": loss}


def _lbfgs_extra(params, loss):
    del loss
    return {"value": quadratic(params), "value_fn": quadratic}


def _assert_same(trajectory, reference):
    for (params, state), (ref_params, ref_state) in zip(trajectory, reference, strict=True):
        jax.tree.map(np.testing.assert_array_equal, params, ref_params)
        for leaf, ref in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state), strict=True):
            np.testing.assert_array_equal(leaf, ref)


def test_to_optax_gives_optax_type_and_keeps_results():
    tx = to_optax(_plateau())
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    assert to_optax(tx) is tx  # already optax's type
    _assert_same(_run(tx, len(LOSSES), _plateau_extra),
                 _run(_plateau(), len(LOSSES), _plateau_extra))


@pytest.mark.parametrize("combine", ["chain", "named_chain"])
def test_reduce_on_plateau_in_optax_combinators(combine):
    members = [("sgd", optxform.sgd(0.1)), ("plateau", _plateau())]
    ours = optxform.chain(*(tx for _, tx in members))
    if combine == "chain":
        theirs = optax.chain(*(to_optax(tx) for _, tx in members))
    else:
        theirs = optax.named_chain(*((name, to_optax(tx)) for name, tx in members))
    reference = _run(ours, len(LOSSES), _plateau_extra)
    trajectory = _run(theirs, len(LOSSES), _plateau_extra)
    # The states differ only in their container (a tuple or a dict keyed by name).
    names = [name for name, _ in members] if combine == "named_chain" else [0, 1]
    _assert_same([(params, tuple(state[n] for n in names)) for params, state in trajectory],
                 reference)
    assert float(trajectory[-1][1][names[1]].scale) == 0.25  # two plateaus: loss= arrived


def test_reduce_on_plateau_unwrapped_in_optax_chain_raises_naming_to_optax():
    tx = optax.chain(optxform.sgd(0.1), _plateau())
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="to_optax"):
        tx.update(PARAMS, state, PARAMS, loss=1.0)


@pytest.mark.parametrize("combine", ["chain", "named_chain"])
def test_lbfgs_in_optax_combinators(combine):
    tx = to_optax(_lbfgs())
    theirs = optax.chain(tx) if combine == "chain" else optax.named_chain(("lbfgs", tx))
    reference = _run(_lbfgs(), 3, _lbfgs_extra)
    trajectory = _run(theirs, 3, _lbfgs_extra)
    member = "lbfgs" if combine == "named_chain" else 0
    _assert_same([(params, state[member]) for params, state in trajectory], reference)
    np.testing.assert_allclose(np.asarray(trajectory[-1][0]["w"]), 3.0, rtol=1e-5)


def test_lbfgs_unwrapped_in_optax_chain_raises_naming_to_optax():
    tx = optax.chain(_lbfgs())
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="to_optax"):
        tx.update(PARAMS, state, PARAMS, value=quadratic(PARAMS), value_fn=quadratic)


def _train_state_run(tx, steps, extra):
    """flax's TrainState holding ``tx``; its apply_gradients passes no extra arguments, so
    the step calls ``state.tx.update`` with them and ``replace``s the result."""

    @jax.jit
    def train_step(state, loss):
        grads = jax.grad(quadratic)(state.params)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params,
                                             **extra(state.params, loss))
        return state.replace(step=state.step + 1, opt_state=opt_state,
                             params=optax.apply_updates(state.params, updates))

    state = TrainState.create(apply_fn=None, params=PARAMS, tx=tx)
    trajectory = []
    for loss in LOSSES[:steps]:
        state = train_step(state, jnp.asarray(loss))
        trajectory.append((state.params, state.opt_state))
    assert int(state.step) == steps
    return trajectory


@pytest.mark.parametrize("make,extra,steps", [
    (lambda: optxform.chain(optxform.adam(0.3), _plateau()), _plateau_extra, len(LOSSES)),
    (_lbfgs, _lbfgs_extra, 3),
], ids=["adam+reduce_on_plateau", "lbfgs"])
def test_flax_train_state(make, extra, steps):
    reference = _run(make(), steps, extra)
    trajectory = _train_state_run(optax.chain(to_optax(make())), steps, extra)
    _assert_same([(params, state[0]) for params, state in trajectory], reference)


def test_to_optax_without_optax_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "optax", None)  # makes `import optax` fail
    with pytest.raises(ImportError, match="pip install optax"):
        to_optax(_plateau())


def test_to_optax_rejects_what_is_not_a_transform():
    with pytest.raises(ValueError, match="gradient transformation"):
        to_optax(optxform.sgd)  # the factory, not a transform
