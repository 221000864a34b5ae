"""Resume equivalence: 2N steps == N steps, save_state, load_state in a FRESH process, N more.

Bit-identical params and state, for every alias of tests/registry.py DEFAULT_CASES and for
chains with a schedule, MultiSteps, param groups and the other wrappers. All cases resume
in ONE subprocess, which also checks that a process killed while writing a checkpoint
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

import optxform
from tests import oracles
from tests.registry import DEFAULT_CASES

N = 4  # steps before and after the restart
KILL_CODE = 17
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_cases() -> dict[str, tuple]:
    """``name -> (factory, problem)``; factories build the transform (also in the child)."""
    cases = {case.alias: ((lambda c=case: c.build()), case.problem)
             for case in DEFAULT_CASES}
    schedule = optxform.exponential_decay(0.02, transition_steps=2, decay_rate=0.7)
    decay_mask = lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)  # noqa: E731
    cases.update({
        "adam+schedule": (lambda: optxform.adam(schedule), "mlp"),
        "multisteps(adamw+schedule)": (
            lambda: optxform.MultiSteps(optxform.adamw(schedule), every_k_schedule=3)
            .gradient_transformation(), "mlp"),
        "groups+wrappers": (lambda: optxform.chain(
            optxform.apply_if_finite(optxform.multi_transform(
                {"a": optxform.adamw(1e-2, mask=decay_mask), "b": optxform.sgd(0.05, 0.9),
                 "frozen": optxform.freeze()},
                {"w1": "a", "b1": "a", "w2": "b", "k": "frozen"}), 3),
            optxform.ema(0.9)), "mlp"),
        "flatten(rmsprop)": (lambda: optxform.flatten(optxform.rmsprop(1e-2)), "mlp"),
        "inject_hyperparams(adam)": (
            lambda: optxform.inject_hyperparams(optxform.adam)(learning_rate=schedule), "mlp"),
    })
    return cases


def make_step(txs: dict, problems: dict):
    """One jitted step for all cases at once (one compile per process instead of one per
    case; the cases stay independent computations)."""

    @jax.jit
    def step(params, states, t):
        new_params, new_states = {}, {}
        for name, tx in txs.items():
            grads = oracles.grad_fn(problems[name])(params[name], t)
            updates, new_states[name] = tx.update(grads, states[name], params[name])
            new_params[name] = optxform.apply_updates(params[name], updates)
        return new_params, new_states

    return step


def run(step, params, states, start: int, steps: int):
    for t in range(start, start + steps):
        params, states = step(params, states, jnp.asarray(t, jnp.int32))
    return params, states


def initial_params(problem):
    make, _ = oracles.PROBLEMS[problem]
    return jax.tree.map(jnp.asarray, make())


_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    import jax
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import optxform
    from optxform.state import files
    from tests import test_resume as tr

    work = {work!r}
    cases = tr.build_cases()
    txs = {{name: factory() for name, (factory, _) in cases.items()}}
    problems = {{name: problem for name, (_, problem) in cases.items()}}
    params, states = {{}}, {{}}
    for name, tx in txs.items():
        shapes = jax.eval_shape(lambda: tr.initial_params(problems[name]))
        params[name] = optxform.load_state(os.path.join(work, name + ".params"), shapes)
        states[name] = optxform.load_state(os.path.join(work, name + ".state"),
                                           jax.eval_shape(tx.init, shapes))
    params, states = tr.run(tr.make_step(txs, problems), params, states, tr.N, tr.N)
    for name in txs:
        optxform.save_state(os.path.join(work, name + ".params.out"), params[name])
        optxform.save_state(os.path.join(work, name + ".state.out"), states[name])

    # A hard crash (no cleanup, no exception handling) halfway through overwriting a
    # checkpoint: the previous file must survive.
    def crash(archive, member, array, _calls=[]):
        _calls.append(member)
        if len(_calls) == 2:
            os._exit({kill})
        archive.writestr(member, files._npy_bytes(array))
    files._write_member = crash
    optxform.save_state(os.path.join(work, "adam.state"), states["adam"])
""")


def _same_bits(a, b) -> bool:
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(np.asarray(x).dtype == np.asarray(y).dtype
               and np.asarray(x).tobytes() == np.asarray(y).tobytes()
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    cases = build_cases()
    txs = {name: factory() for name, (factory, _) in cases.items()}
    problems = {name: problem for name, (_, problem) in cases.items()}
    step = make_step(txs, problems)
    params = {name: initial_params(problems[name]) for name in txs}
    states = {name: tx.init(params[name]) for name, tx in txs.items()}
    params, states = run(step, params, states, 0, N)
    for name in txs:
        optxform.save_state(tmp_path / f"{name}.params", params[name])
        optxform.save_state(tmp_path / f"{name}.state", states[name])
    params, states = run(step, params, states, N, N)  # the uninterrupted 2N steps
    adam_checkpoint = (tmp_path / "adam.state").read_bytes()

    script = _CHILD.format(repo=REPO, work=str(tmp_path), kill=KILL_CODE)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ), cwd=REPO)
    assert result.returncode == KILL_CODE, result.stderr[-3000:]

    mismatched = []
    for name, problem in problems.items():
        want_params, want_state = params[name], states[name]
        got_params = optxform.load_state(tmp_path / f"{name}.params.out", want_params)
        got_state = optxform.load_state(tmp_path / f"{name}.state.out", want_state)
        if not (_same_bits(got_params, want_params) and _same_bits(got_state, want_state)):
            mismatched.append(name)
        assert not bool(jnp.all(want_params[sorted(want_params)[0]]
                                == initial_params(problem)[sorted(want_params)[0]])), name
    assert not mismatched, f"resumed runs differ from uninterrupted ones: {mismatched}"

    # The child died while overwriting adam.state: the old checkpoint is intact.
    assert (tmp_path / "adam.state").read_bytes() == adam_checkpoint
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert leftovers and all(n.startswith(".adam.state.") for n in leftovers)
