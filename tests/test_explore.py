"""optxform.explore: specs, vmapped trajectories, the chooser and the LR range test."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.explore import trajectory as traj_mod
from optxform.explore.lr_finder import analyze_sweep


def _loop(tx, loss_fn, params, steps, data=None):
    """The reference: one jitted update at a time, no scan, no vmap."""
    f = (lambda p: loss_fn(p, data)) if data is not None else loss_fn
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(f)(params)
        updates, state = tx.update(grads, state, params)
        return optxform.apply_updates(params, updates), state, loss

    path, losses = [params], []
    for _ in range(steps):
        params, state, loss = step(params, state)
        path.append(params)
        losses.append(loss)
    losses.append(f(params))
    return np.stack([np.asarray(p) for p in path]), np.asarray(losses)


# --------------------------------------------------------------------------------- specs


def test_parse_optimizer_reads_names_options_and_presets():
    spec = optxform.parse_optimizer("sgd:lr=0.01, momentum=0.9, nesterov=true")
    assert spec.alias == "sgd" and spec.label == "sgd(lr=0.01, momentum=0.9, nesterov=True)"
    assert spec.kwargs() == {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}
    preset = optxform.parse_optimizer("nesterov:lr=0.1")
    assert preset.alias == "sgd"
    assert preset.kwargs() == {"momentum": 0.9, "nesterov": True, "learning_rate": 0.1}
    assert optxform.parse_optimizer("adam").build() is not None
    assert "adam" in optxform.optimizer_names() and "momentum" in optxform.optimizer_names()
    labels = [s.label for s in optxform.parse_optimizers(["adam", "adam", "sgd"])]
    assert labels == ["adam", "adam#2", "sgd"]


@pytest.mark.parametrize("text, message", [
    ("adamm", r"unknown optimizer 'adamm'; known optimizers: sgd, .*adam"),
    ("adam:lr", r"expected key=value"),
    ("adam:lr=fast", r"cannot read the value of 'lr'"),
    ("adam:bogus=1.0", r"optimizer 'adam' has no option 'bogus'; its options are: "
                       r"learning_rate"),
    ("adam:lr=-1.0", r"learning_rate"),  # the alias's own validation
])
def test_parse_optimizer_errors(text, message):
    with pytest.raises(ValueError, match=message):
        optxform.parse_optimizer(text)


def test_grouping_shares_only_compatible_specs():
    specs = optxform.parse_optimizers(["sgd:lr=0.1", "sgd:lr=0.2", "sgd:lr=0.1,momentum=0.0",
                                       "sgd:lr=0.1,momentum=0.9", "sgd:lr=0.2,momentum=0.5",
                                       "adam:lr=0.1", "sgd:lr=0.1,nesterov=true,momentum=0.9"])
    # momentum exactly 0.0 can change the state's structure, so it is its own group.
    assert traj_mod.group_specs(specs) == [[0, 1], [2], [3, 4], [5], [6]]
    constant, varying = traj_mod.varying_options([specs[3], specs[4]])
    assert constant == {} and set(varying) == {"learning_rate", "momentum"}
    np.testing.assert_allclose(np.asarray(varying["momentum"]), [0.9, 0.5])


# -------------------------------------------------------------------------- trajectories


def test_trajectories_equal_step_by_step_updates():
    specs = ["sgd:lr=2e-3", "sgd:lr=1e-3", "momentum:lr=1e-3", "momentum:lr=5e-4,momentum=0.5",
             "adam:lr=0.1", "adam:lr=0.03", "rmsprop:lr=0.01"]
    start = jnp.asarray([-1.5, 2.0], jnp.float32)
    runs = optxform.trajectories(optxform.rosenbrock, start, specs, steps=25)
    assert list(runs) == [optxform.parse_optimizer(s).label for s in specs]
    for spec in specs:
        run = runs[optxform.parse_optimizer(spec).label]
        path, losses = _loop(optxform.parse_optimizer(spec).build(), optxform.rosenbrock,
                             start, 25)
        assert run.params.shape == (26, 2) and run.losses.shape == (26,)
        np.testing.assert_allclose(run.params, path, rtol=2e-5, atol=1e-6, err_msg=spec)
        np.testing.assert_allclose(run.losses, losses, rtol=2e-5, atol=1e-6, err_msg=spec)
        assert run.final_loss == run.losses[-1] and not run.diverged
    # The run moved: it is not a copy of the start point.
    assert runs["adam(lr=0.1)"].final_loss < 0.5 * runs["adam(lr=0.1)"].losses[0]


def test_trajectories_on_a_pytree_and_divergence():
    start = {"a": jnp.ones((3,), jnp.float32), "b": jnp.full((2, 2), 2.0, jnp.float32)}
    loss = lambda p: jnp.sum(p["a"] ** 2) + 0.5 * jnp.sum(p["b"] ** 2)  # noqa: E731
    runs = optxform.trajectories(loss, start, ["sgd:lr=0.1", "sgd:lr=1.5"], steps=40)
    good, bad = runs["sgd(lr=0.1)"], runs["sgd(lr=1.5)"]
    assert good.params["b"].shape == (41, 2, 2)
    # Gradient descent on a quadratic: a = (1 - 2 lr)^t, b = 2 (1 - lr)^t exactly.
    np.testing.assert_allclose(good.params["a"][:, 0], 0.8 ** np.arange(41), rtol=1e-5)
    np.testing.assert_allclose(good.final_params["b"], 2 * 0.9 ** 40, rtol=1e-5)
    assert not good.diverged
    assert bad.diverged and bad.final_loss > bad.losses[0]  # |1 - 2 * 1.5| = 2 > 1


def test_trajectories_reject_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        optxform.trajectories(optxform.booth, [0.0, 0.0], ["sgd"], steps=0)


# ------------------------------------------------------------------------------ chooser


def _logreg_problem():
    loss_fn, params, data = optxform.get_problem("logreg_spirals").load()
    return loss_fn, params, data


def test_choose_vmapped_results_equal_separate_runs():
    loss_fn, params, data = _logreg_problem()
    lrs = [0.01, 3.0]
    result = optxform.choose(loss_fn, params, data, optimizers=["sgd", "adam:b1=0.8"],
                             learning_rates=lrs, steps=15)
    assert len(result.rows) == 4 and result.steps == 15
    assert result.initial_loss == pytest.approx(math.log(2.0), rel=1e-6)
    for name, make in [("sgd", lambda lr: optxform.sgd(learning_rate=lr)),
                       ("adam(b1=0.8)", lambda lr: optxform.adam(learning_rate=lr, b1=0.8))]:
        for lr in lrs:
            _, expected = _loop(make(lr), loss_fn, params, 15, data)
            np.testing.assert_allclose(result.curves[(name, lr)], expected, rtol=2e-5,
                                       atol=1e-6, err_msg=f"{name} lr={lr}")
            row = next(r for r in result.rows if (r.optimizer, r.learning_rate) == (name, lr))
            assert row.final_loss == pytest.approx(float(expected[-1]), rel=2e-5)
            assert row.best_loss == pytest.approx(float(expected.min()), rel=2e-5)
            assert row.time_s >= 0 and row.compile_s > 0


def test_choose_ranks_and_flags_divergence():
    loss = lambda p: 0.5 * jnp.sum(p ** 2)  # noqa: E731  gradient descent diverges for lr > 2
    result = optxform.choose(loss, jnp.ones((4,), jnp.float32), None,
                             optimizers=["sgd", "sgd:lr=0.5"],
                             learning_rates=[0.1, 1.0, 2.5, 1e4], steps=10)
    by = {(r.optimizer, r.learning_rate): r for r in result.rows}
    assert by[("sgd", 1.0)].final_loss == 0.0 and not by[("sgd", 1.0)].diverged
    assert by[("sgd", 2.5)].diverged and by[("sgd", 1e4)].diverged
    assert ("sgd(lr=0.5)", 0.5) in by and len(result.rows) == 5  # own lr: one run only
    assert [r.rank for r in result.rows] == [1, 2, 3, 4, 5]
    assert result.best.learning_rate == 1.0
    assert [r.diverged for r in result.rows] == [False, False, False, True, True]
    text = result.table()
    assert text.splitlines()[0].split()[:2] == ["rank", "optimizer"]
    assert result.table("csv").count("\n") == 5
    assert result.table("markdown").startswith("| rank")
    assert [r.optimizer for r in result.best_per_optimizer()] == ["sgd", "sgd(lr=0.5)"]
    assert result.notes() == []  # best rate 1.0 is inside the grid
    edge = optxform.choose(loss, jnp.ones((4,), jnp.float32), None, ["sgd", "adam"],
                           [1e-3, 1e-2], steps=3)
    assert edge.notes() == ["sgd: the best rate 0.01 is the largest tried; larger ones may "
                            "do better", "adam: the best rate 0.01 is the largest tried; "
                            "larger ones may do better"]


def test_choose_minibatches():
    loss_fn, params, data = optxform.get_problem("mlp_spirals").load()
    result = optxform.choose(loss_fn, params, data, ["sgd"], [0.5], 3, batch_size=32)
    curve = result.curves[("sgd", 0.5)]
    # Step 0's loss is on a 32-row batch, not on all 400 rows; the last is on all of them.
    assert np.isfinite(curve).all()
    assert curve[0] != pytest.approx(result.initial_loss, rel=1e-4)
    assert result.rows[0].final_loss == curve[-1]
    with pytest.raises(ValueError, match="batch_size"):
        optxform.choose(loss_fn, params, data, ["sgd"], [0.1], 2, batch_size=10_000)


@pytest.mark.parametrize("lrs, message", [([], "empty"), ([0.1, -1.0], "> 0"),
                                          ([0.1, 0.1], "repeated"), ("0.1", "list"),
                                          ([float("nan")], "finite"), (["a"], "number")])
def test_check_learning_rates(lrs, message):
    with pytest.raises(ValueError, match=message):
        optxform.check_learning_rates(lrs)


# ----------------------------------------------------------------------- LR range test


def test_lr_range_test_stops_where_gradient_descent_blows_up():
    # f = 2 x^2: gradient descent is stable for lr < 2 / 4 = 0.5 and explodes above it.
    loss = lambda p: 2.0 * jnp.sum(p ** 2)  # noqa: E731
    result = optxform.lr_range_test(loss, jnp.ones((3,), jnp.float32), None, "sgd",
                                    min_lr=1e-4, max_lr=100.0, steps=60)
    assert result.stopped_early
    assert 0.5 < result.learning_rates[-1] < 5.0
    assert 1e-4 <= result.suggestion < 0.5 and result.suggestion <= result.min_loss_lr
    assert len(result.losses) == len(result.smoothed) == len(result.learning_rates)
    assert "suggested learning rate" in str(result)
    with pytest.raises(ValueError, match="min_lr"):
        optxform.lr_range_test(loss, jnp.ones(3, jnp.float32), min_lr=1.0, max_lr=0.1)


def test_analyze_sweep_picks_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-4, 0, 41)
    x = np.log10(lrs)
    losses = 1.0 - 0.5 * np.tanh(3 * (x + 2))  # steepest at lr = 1e-2
    losses[35:] = [0.6, 1.0, 3.0, 10.0, np.nan, np.nan]
    result = analyze_sweep(lrs, losses, smoothing=0.0, stop_factor=4.0)
    assert result.suggestion == pytest.approx(1e-2)
    assert result.stopped_early and len(result.losses) == 37  # cut at 3.0 > 4 x 0.5...
    assert result.min_loss_lr == pytest.approx(lrs[34])


def test_iter_choose_yields_the_result_so_far_after_each_optimizer():
    loss = lambda p: 0.5 * jnp.sum(p ** 2)  # noqa: E731  gradient descent diverges for lr > 2
    start = jnp.ones((4,), jnp.float32)
    results = list(optxform.explore.iter_choose(loss, start, None, ["sgd", "adam"],
                                                [0.1, 1e4], steps=5))
    assert [r.optimizers() for r in results] == [["sgd"], ["sgd", "adam"]]
    assert len(results[0].rows) == 2 and len(results[1].rows) == 4
    final = optxform.choose(loss, start, None, ["sgd", "adam"], [0.1, 1e4], steps=5)
    assert [r[:6] for r in results[-1].rows] == [r[:6] for r in final.rows]
    fates = {(r.optimizer, r.learning_rate): r.fate for r in final.rows}
    assert fates[("sgd", 0.1)] == "converged" and fates[("sgd", 1e4)] == "non-finite"
    assert final.converged
    worse = optxform.choose(loss, start, None, ["adam"], [1e4], steps=5)
    assert not worse.converged and worse.rows[0].fate == "rose"  # finite, above the start


def test_a_loss_that_is_nan_at_the_start_is_not_blamed_on_the_learning_rate():
    loss = lambda p: jnp.sum(jnp.log(p))  # noqa: E731  nan for negative params
    start = -jnp.ones((3,), jnp.float32)
    with pytest.raises(ValueError, match="the loss is nan at the start point, before any step"):
        optxform.choose(loss, start, None, ["sgd"], [0.1], steps=3)
    with pytest.raises(ValueError, match="at the start point") as info:
        optxform.lr_range_test(loss, start, steps=10)
    assert "min_lr" not in str(info.value)


def test_analyze_sweep_stops_on_the_blow_up_of_a_negative_loss():
    lrs = np.logspace(-4, 0, 30)
    losses = -np.linspace(1.0, 2.0, 30)  # still improving: no stop
    assert not analyze_sweep(lrs, losses, smoothing=0.0).stopped_early
    losses[25:] = [-1.5, 1.0, 10.0, 30.0, 100.0]  # 1.0 is 3 x |best| above the best (-1.8)
    result = analyze_sweep(lrs, losses, smoothing=0.0, stop_factor=2.0)
    assert result.stopped_early and len(result.losses) == 26


def test_optimizers_beyond_torch_race_in_the_chooser():
    names = ["muon_with_adamw", "schedule_free_adamw", "schedule_free_sgd", "adopt",
             "ademamix", "adabelief"]
    assert set(names) <= set(optxform.optimizer_names())
    loss_fn, params, data = optxform.get_problem("mlp_spirals").load()
    result = optxform.choose(loss_fn, params, data, names, [1e-3, 1e-2], 5)
    assert sorted({r.optimizer for r in result.rows}) == sorted(names)
    assert all(np.isfinite(r.final_loss) for r in result.rows)


def test_matrix_optimizers_race_in_the_chooser():
    names = ["soap", "shampoo", "kron"]
    assert set(names) <= set(optxform.optimizer_names())
    loss_fn, params, data = optxform.get_problem("mlp_spirals").load()
    result = optxform.choose(loss_fn, params, data, names, [1e-2], 3)
    assert sorted({r.optimizer for r in result.rows}) == sorted(names)
    # Each trained: a finite final loss at or below the loss at the start.
    assert all(np.isfinite(r.final_loss) and not r.diverged for r in result.rows), result.rows


def test_schedule_free_runs_are_judged_at_their_evaluation_point():
    loss_fn = lambda p: jnp.sum((p["w"] - jnp.array([1.0, -2.0])) ** 2)  # noqa: E731
    params = {"w": jnp.zeros(2)}
    tx = optxform.schedule_free_sgd(0.1)
    _, losses = optxform.run_optimizer(tx, loss_fn, params, 5, record_params=False)
    state, y = tx.init(params), params
    for _ in range(5):
        updates, state = tx.update(jax.grad(loss_fn)(y), state, y)
        y = optxform.apply_updates(y, updates)
    x = optxform.schedule_free_eval_params(state, y)
    np.testing.assert_allclose(float(losses[-1]), float(loss_fn(x)), rtol=1e-6)
    assert abs(float(loss_fn(x)) - float(loss_fn(y))) > 1e-3  # x is not y
