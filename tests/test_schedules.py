"""Schedules against torch.optim.lr_scheduler, optax and keras' documented formulas.

Each schedule is evaluated once, vectorised over an array of steps under jit; torch's
scheduler is stepped the usual way (``optimizer.step(); scheduler.step()``) and the lr in
force before each ``optimizer.step()`` is recorded, so ``schedule(t)`` must equal the lr of
the ``(t+1)``-th step, past the end of the schedule and at every boundary.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform as ox

RTOL = 1e-6
N = 300
INT32_MAX = 2**31 - 1


def torch_values(make_scheduler, steps=N, lr=0.1, optimizer="SGD", **opt_kwargs):
    """(lrs, momenta) in force for optimizer steps 1..steps of a torch scheduler."""
    import torch

    param = torch.zeros(1, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([param], lr=lr, **opt_kwargs)
    scheduler = make_scheduler(opt)
    lrs, momenta = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        lrs.append(float(group["lr"]))
        momenta.append(float(group["betas"][0] if "betas" in group else group["momentum"]))
        opt.step()
        scheduler.step()
    return np.asarray(lrs), np.asarray(momenta)


def evaluate(schedule, steps=N):
    values = jax.jit(schedule)(jnp.arange(steps, dtype=jnp.int32))
    assert values.dtype == jnp.float32 and values.shape == (steps,)
    return np.asarray(values, np.float64)


def assert_close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0.0)


def _L():
    from torch.optim import lr_scheduler
    return lr_scheduler


# (id, torch scheduler factory (lr_scheduler module, optimizer) -> scheduler, optxform
# schedule for base lr 0.1)
TORCH_CASES = [
    ("StepLR(7,0.5)", lambda L, o: L.StepLR(o, 7, 0.5), lambda: ox.step_decay(0.1, 7, 0.5)),
    ("StepLR(30)", lambda L, o: L.StepLR(o, 30), lambda: ox.step_decay(0.1, 30)),
    ("MultiStepLR", lambda L, o: L.MultiStepLR(o, [3, 50, 120], 0.3),
     lambda: ox.multistep_decay(0.1, [3, 50, 120], 0.3)),
    ("MultiStepLR(repeat,unsorted)", lambda L, o: L.MultiStepLR(o, [90, 10, 90], 0.5),
     lambda: ox.multistep_decay(0.1, [90, 10, 90], 0.5)),
    ("ExponentialLR(0.95)", lambda L, o: L.ExponentialLR(o, 0.95),
     lambda: ox.exponential_decay(0.1, 1, 0.95)),
    ("ExponentialLR(0.99)", lambda L, o: L.ExponentialLR(o, 0.99),
     lambda: ox.exponential_decay(0.1, 1, 0.99)),
    ("ExponentialLR(1.01)", lambda L, o: L.ExponentialLR(o, 1.01),
     lambda: ox.exponential_decay(0.1, 1, 1.01)),
    ("LinearLR(default)", lambda L, o: L.LinearLR(o),
     lambda: ox.linear_schedule(0.1 / 3, 0.1, 5)),
    ("LinearLR(0.25,1,37)", lambda L, o: L.LinearLR(o, 0.25, 1.0, 37),
     lambda: ox.linear_schedule(0.025, 0.1, 37)),
    ("LinearLR(decay)", lambda L, o: L.LinearLR(o, 1.0, 0.01, 200),
     lambda: ox.linear_schedule(0.1, 0.001, 200)),
    ("PolynomialLR(100,2)", lambda L, o: L.PolynomialLR(o, 100, 2.0),
     lambda: ox.polynomial_schedule(0.1, 0.0, 2.0, 100)),
    ("PolynomialLR(150,0.5)", lambda L, o: L.PolynomialLR(o, 150, 0.5),
     lambda: ox.polynomial_schedule(0.1, 0.0, 0.5, 150)),
    ("PolynomialLR(default)", lambda L, o: L.PolynomialLR(o),
     lambda: ox.polynomial_schedule(0.1, 0.0, 1.0, 5)),
    ("CosineAnnealingLR(100)", lambda L, o: L.CosineAnnealingLR(o, 100),
     lambda: ox.cosine_annealing(0.1, 100)),
    ("CosineAnnealingLR(33,1e-3)", lambda L, o: L.CosineAnnealingLR(o, 33, 1e-3),
     lambda: ox.cosine_annealing(0.1, 33, 1e-3)),
    ("CosineAnnealingWarmRestarts(10,2)",
     lambda L, o: L.CosineAnnealingWarmRestarts(o, 10, 2, 1e-4),
     lambda: ox.cosine_annealing_warm_restarts(0.1, 10, 2, 1e-4)),
    ("CosineAnnealingWarmRestarts(17)", lambda L, o: L.CosineAnnealingWarmRestarts(o, 17),
     lambda: ox.cosine_annealing_warm_restarts(0.1, 17)),
    ("CosineAnnealingWarmRestarts(3,3)", lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 3),
     lambda: ox.cosine_annealing_warm_restarts(0.1, 3, 3)),
    ("OneCycleLR(cos)", lambda L, o: L.OneCycleLR(o, 1.0, total_steps=N),
     lambda: ox.one_cycle(N, 1.0)),
    ("OneCycleLR(linear)", lambda L, o: L.OneCycleLR(o, 0.3, total_steps=N,
                                                     anneal_strategy="linear"),
     lambda: ox.one_cycle(N, 0.3, anneal_strategy="linear")),
    ("OneCycleLR(cos,3phase)", lambda L, o: L.OneCycleLR(
        o, 0.5, total_steps=N, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
        three_phase=True),
     lambda: ox.one_cycle(N, 0.5, 0.25, div_factor=10.0, final_div_factor=100.0,
                          three_phase=True)),
    ("OneCycleLR(linear,3phase)", lambda L, o: L.OneCycleLR(
        o, 0.5, total_steps=N, pct_start=0.4, anneal_strategy="linear", three_phase=True),
     lambda: ox.one_cycle(N, 0.5, 0.4, "linear", three_phase=True)),
    ("CyclicLR(triangular)", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 20),
     lambda: ox.cyclic(0.01, 0.1, 20)),
    ("CyclicLR(triangular2)", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 15, 25,
                                                      mode="triangular2"),
     lambda: ox.cyclic(0.01, 0.1, 15, 25, "triangular2")),
    ("CyclicLR(exp_range)", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 15, mode="exp_range",
                                                    gamma=0.995),
     lambda: ox.cyclic(0.01, 0.1, 15, mode="exp_range", gamma=0.995)),
    ("CyclicLR(fractional sizes)", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 7.5, 12.25),
     lambda: ox.cyclic(0.01, 0.1, 7.5, 12.25)),
    ("CyclicLR(down=0)", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 12, 0),
     lambda: ox.cyclic(0.01, 0.1, 12, 0)),
    ("SequentialLR(Linear,Exponential)", lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, 1.0, 10), L.ExponentialLR(o, 0.97)], milestones=[10]),
     lambda: ox.join_schedules([ox.linear_schedule(0.01, 0.1, 10),
                                ox.exponential_decay(0.1, 1, 0.97)], [10])),
    ("SequentialLR(Constant,Cosine,Step)", lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, 0.5, 20), L.CosineAnnealingLR(o, 80), L.StepLR(o, 25, 0.5)],
        milestones=[20, 120]),
     lambda: ox.join_schedules([ox.constant_schedule(0.05), ox.cosine_annealing(0.1, 80),
                                ox.step_decay(0.1, 25, 0.5)], [20, 120])),
    ("ConstantLR", lambda L, o: L.ConstantLR(o, 0.25, 40),
     lambda: ox.join_schedules([ox.constant_schedule(0.025), ox.constant_schedule(0.1)],
                               [40])),
]


@pytest.mark.parametrize("make_torch, make_ours", [c[1:] for c in TORCH_CASES],
                         ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_scheduler(make_torch, make_ours):
    expected, _ = torch_values(lambda opt: make_torch(_L(), opt))
    assert_close(evaluate(make_ours()), expected)


def test_warmup_cosine_matches_torch_sequential_linear_then_cosine():
    # torch SequentialLR([LinearLR, CosineAnnealingLR]) == warmup_cosine_decay_schedule up to
    # the end of the decay.
    expected, _ = torch_values(lambda o: _L().SequentialLR(
        o, [_L().LinearLR(o, 0.2, 1.0, 25), _L().CosineAnnealingLR(o, 175, 1e-3)], [25]),
        steps=201)
    ours = evaluate(ox.warmup_cosine_decay_schedule(0.02, 0.1, 25, 200, 1e-3), steps=201)
    assert_close(ours, expected)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_one_cycle_momentum_matches_torch(anneal, three_phase, optimizer):
    kwargs = {"momentum": 0.9} if optimizer == "SGD" else {}
    lrs, momenta = torch_values(lambda o: _L().OneCycleLR(
        o, 0.4, total_steps=200, pct_start=0.35, anneal_strategy=anneal,
        three_phase=three_phase, base_momentum=0.8, max_momentum=0.97),
        steps=200, optimizer=optimizer, **kwargs)
    assert_close(evaluate(ox.one_cycle(200, 0.4, 0.35, anneal, three_phase=three_phase),
                          200), lrs)
    assert_close(evaluate(ox.one_cycle_momentum(200, 0.35, anneal, 0.8, 0.97, three_phase),
                          200), momenta)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_momentum_matches_torch(mode):
    lrs, momenta = torch_values(lambda o: _L().CyclicLR(
        o, 0.01, 0.1, 13, 21, mode=mode, gamma=0.99, base_momentum=0.75, max_momentum=0.95),
        momentum=0.9)
    assert_close(evaluate(ox.cyclic(0.01, 0.1, 13, 21, mode, 0.99)), lrs)
    assert_close(evaluate(ox.cyclic_momentum(0.75, 0.95, 13, 21, mode, 0.99)), momenta)


def test_cyclic_custom_scale_fn_matches_torch():
    lrs, _ = torch_values(lambda o: _L().CyclicLR(
        o, 0.01, 0.1, 10, scale_fn=lambda x: 1.0 / (1.0 + 0.1 * x), scale_mode="iterations"),
        momentum=0.9)
    ours = ox.cyclic(0.01, 0.1, 10, scale_mode="iterations",
                     scale_fn=lambda x: 1.0 / (1.0 + 0.1 * x.astype(jnp.float32)))
    assert_close(evaluate(ours), lrs)


def test_one_cycle_holds_its_final_value_past_the_end():
    values = evaluate(ox.one_cycle(50, 1.0), 80)
    assert values[49] == pytest.approx(1.0 / 25 / 1e4, rel=1e-6)
    np.testing.assert_array_equal(values[49:], values[49])


# ------------------------------------------------------------------------------ optax

def _optax_reference(make, steps):
    """optax's schedule evaluated in float64 (jax_enable_x64), as numpy."""
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        return np.asarray(make()(np.arange(steps, dtype=np.int64)), np.float64)


OPTAX_CASES = [
    ("constant_schedule", dict(value=0.3)),
    ("exponential_decay", dict(init_value=0.1, transition_steps=7, decay_rate=0.6)),
    ("exponential_decay", dict(init_value=0.1, transition_steps=7, decay_rate=0.6,
                               staircase=True, transition_begin=20)),
    ("exponential_decay", dict(init_value=0.1, transition_steps=3, decay_rate=0.9,
                               end_value=0.01)),
    ("exponential_decay", dict(init_value=0.1, transition_steps=5, decay_rate=1.02,
                               end_value=0.3, transition_begin=4)),
    ("linear_schedule", dict(init_value=0.0, end_value=0.2, transition_steps=90,
                             transition_begin=15)),
    ("linear_schedule", dict(init_value=0.5, end_value=0.05, transition_steps=0)),
    ("polynomial_schedule", dict(init_value=1.0, end_value=0.01, power=3.0,
                                 transition_steps=120, transition_begin=30)),
    ("polynomial_schedule", dict(init_value=0.0, end_value=1.0, power=0.5,
                                 transition_steps=100)),
    ("piecewise_constant_schedule", dict(init_value=0.1,
                                         boundaries_and_scales={40: 0.5, 90: 0.1, 91: 3.0})),
    ("cosine_decay_schedule", dict(init_value=0.2, decay_steps=150)),
    ("cosine_decay_schedule", dict(init_value=0.2, decay_steps=100, alpha=0.1, exponent=2.0)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.0, peak_value=0.3, warmup_steps=40,
                                          decay_steps=250, end_value=0.003)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.01, peak_value=0.1, warmup_steps=0,
                                          decay_steps=100, exponent=1.5)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.0, peak_value=0.1,
                                               warmup_steps=20, transition_steps=10,
                                               decay_rate=0.8, transition_begin=5,
                                               staircase=True, end_value=0.005)),
]


@pytest.mark.parametrize("name, kwargs", OPTAX_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTAX_CASES)])
def test_matches_optax_schedule(name, kwargs):
    import optax

    expected = _optax_reference(lambda: getattr(optax, name)(**kwargs), N)
    # Where the value is zero optax's float64 value is zero too: atol covers only ulps.
    np.testing.assert_allclose(evaluate(getattr(ox, name)(**kwargs)), expected, rtol=RTOL,
                               atol=1e-12)


def test_join_schedules_matches_optax():
    import optax

    def make(lib):
        return lib.join_schedules(
            [lib.linear_schedule(0.0, 0.1, 30), lib.cosine_decay_schedule(0.1, 100),
             lib.exponential_decay(0.05, 10, 0.5)], [30, 130])

    np.testing.assert_allclose(evaluate(make(ox)), _optax_reference(lambda: make(optax), N),
                               rtol=RTOL, atol=1e-12)


# ------------------------------------------------------------------------------ keras
# Closed-form float64 references written from keras' documented formulas.

def keras_exponential(v0, decay_steps, rate, staircase, t):
    p = t / decay_steps
    return v0 * rate ** (np.floor(p) if staircase else p)


def keras_piecewise(boundaries, values, t):
    return np.asarray([values[sum(step > b for b in boundaries)] for step in t])


def keras_polynomial(v0, decay_steps, end, power, cycle, t):
    if cycle:
        horizon = decay_steps * np.maximum(np.ceil(t / decay_steps), 1.0)
        return (v0 - end) * (1 - t / horizon) ** power + end
    step = np.minimum(t, decay_steps)
    return (v0 - end) * (1 - step / decay_steps) ** power + end


def keras_inverse_time(v0, decay_steps, rate, staircase, t):
    p = np.floor(t / decay_steps) if staircase else t / decay_steps
    return v0 / (1 + rate * p)


def keras_cosine(v0, decay_steps, alpha, warmup_target, warmup_steps, t):
    out = []
    for step in t:
        if warmup_target is not None and step < warmup_steps:
            out.append(v0 + (warmup_target - v0) * step / warmup_steps)
            continue
        peak = v0 if warmup_target is None else warmup_target
        s = min(step - warmup_steps, decay_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * s / decay_steps))
        out.append(peak * ((1 - alpha) * cosine + alpha))
    return np.asarray(out)


def keras_cosine_restarts(v0, first, t_mul, m_mul, alpha, t):
    out = []
    for step in t:
        fraction = step / first
        if t_mul == 1.0:
            i = math.floor(fraction)
            fraction -= i
        else:
            i = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul) + 1e-12)
            fraction = (fraction - (1 - t_mul ** i) / (1 - t_mul)) / t_mul ** i
        cosine = 0.5 * m_mul ** i * (1 + math.cos(math.pi * fraction))
        out.append(v0 * ((1 - alpha) * cosine + alpha))
    return np.asarray(out)


T_F64 = np.arange(N, dtype=np.float64)

KERAS_CASES = [
    ("ExponentialDecay", lambda: ox.exponential_decay(0.1, 15, 0.7),
     lambda: keras_exponential(0.1, 15, 0.7, False, T_F64)),
    ("ExponentialDecay(staircase)", lambda: ox.exponential_decay(0.1, 15, 0.7, staircase=True),
     lambda: keras_exponential(0.1, 15, 0.7, True, T_F64)),
    ("PiecewiseConstantDecay", lambda: ox.piecewise_constant_decay([10, 100, 101], [1.0, 0.5,
                                                                                   0.1, 0.01]),
     lambda: keras_piecewise([10, 100, 101], [1.0, 0.5, 0.1, 0.01], T_F64)),
    ("PolynomialDecay", lambda: ox.polynomial_schedule(0.1, 1e-4, 2.0, 120),
     lambda: keras_polynomial(0.1, 120, 1e-4, 2.0, False, T_F64)),
    ("PolynomialDecay(cycle)", lambda: ox.polynomial_schedule(0.1, 1e-3, 1.5, 40, cycle=True),
     lambda: keras_polynomial(0.1, 40, 1e-3, 1.5, True, T_F64)),
    ("InverseTimeDecay", lambda: ox.inverse_time_decay(0.1, 10, 0.5),
     lambda: keras_inverse_time(0.1, 10, 0.5, False, T_F64)),
    ("InverseTimeDecay(staircase)", lambda: ox.inverse_time_decay(0.1, 10, 0.5, True),
     lambda: keras_inverse_time(0.1, 10, 0.5, True, T_F64)),
    ("CosineDecay", lambda: ox.cosine_decay_schedule(0.1, 200, alpha=0.05),
     lambda: keras_cosine(0.1, 200, 0.05, None, 0, T_F64)),
    ("CosineDecay(warmup)", lambda: ox.warmup_cosine_decay_schedule(0.0, 0.2, 30, 30 + 150,
                                                                    end_value=0.1 * 0.2),
     lambda: keras_cosine(0.0, 150, 0.1, 0.2, 30, T_F64)),
    ("CosineDecayRestarts", lambda: ox.cosine_decay_restarts(0.1, 20),
     lambda: keras_cosine_restarts(0.1, 20, 2.0, 1.0, 0.0, T_F64)),
    ("CosineDecayRestarts(t_mul=1.5,m_mul=0.8,alpha)",
     lambda: ox.cosine_decay_restarts(0.1, 16, 1.5, 0.8, 0.05),
     lambda: keras_cosine_restarts(0.1, 16, 1.5, 0.8, 0.05, T_F64)),
    ("CosineDecayRestarts(t_mul=1)", lambda: ox.cosine_decay_restarts(0.1, 25, 1.0, 0.9),
     lambda: keras_cosine_restarts(0.1, 25, 1.0, 0.9, 0.0, T_F64)),
]


@pytest.mark.parametrize("make_ours, make_reference", [c[1:] for c in KERAS_CASES],
                         ids=[c[0] for c in KERAS_CASES])
def test_matches_keras_formula(make_ours, make_reference):
    np.testing.assert_allclose(evaluate(make_ours()), make_reference(), rtol=RTOL, atol=1e-12)


def test_keras_restarts_equal_torch_warm_restarts_for_integer_factors():
    a = evaluate(ox.cosine_decay_restarts(0.1, 10, 2.0, 1.0, alpha=0.01))
    b = evaluate(ox.cosine_annealing_warm_restarts(0.1, 10, 2, eta_min=0.001))
    assert_close(a, b, rtol=2e-6)


# ------------------------------------------------------------------------------ huge steps

def test_periodic_schedules_stay_exact_at_huge_steps():
    big = INT32_MAX - 7
    cases = [
        (ox.cosine_annealing(0.1, 100), 200),
        (ox.cosine_annealing_warm_restarts(0.1, 17), 17),
        (ox.cyclic(0.01, 0.1, 15, 25, "triangular"), 40),
        (ox.cosine_decay_restarts(0.1, 30, 1.0), 30),
    ]
    for schedule, period in cases:
        steps = jnp.asarray([big - 3 * period, big - period, big], jnp.int32)
        reference = jnp.asarray([(big - 3 * period) % period, (big - period) % period,
                                 big % period], jnp.int32)
        np.testing.assert_array_equal(np.asarray(jax.jit(schedule)(steps)),
                                      np.asarray(jax.jit(schedule)(reference)))


def test_warm_restarts_with_growing_cycles_at_huge_steps():
    schedule = jax.jit(ox.cosine_annealing_warm_restarts(1.0, 3, 2))
    # Cycle i starts at 3 (2^i - 1); the last start below int32 max is at i = 29.
    start = 3 * (2**29 - 1)
    values = np.asarray(schedule(jnp.asarray([start, start + 1, INT32_MAX], jnp.int32)))
    assert values[0] == 1.0
    expected_last = 0.5 * (1 + math.cos(math.pi * (INT32_MAX - start) / (3 * 2**29)))
    assert values[2] == pytest.approx(expected_last, rel=1e-5)
    assert 0.0 <= values[1] <= 1.0


def test_steps_saturate_and_any_integer_or_float_step_is_accepted():
    schedule = ox.exponential_decay(1.0, 10, 0.5)
    cases = {"int32 max": jnp.asarray(INT32_MAX, jnp.int32),
             "uint8": jnp.asarray(30, jnp.uint8), "float": jnp.asarray(30.7, jnp.float32),
             "negative": jnp.asarray(-5, jnp.int32)}
    values = {k: float(schedule(v)) for k, v in cases.items()}
    assert values["int32 max"] == 0.0 and not math.isnan(values["int32 max"])
    assert values["uint8"] == pytest.approx(0.125, rel=1e-6) == values["float"]
    assert values["negative"] == 1.0
    with jax.enable_x64(True):
        assert float(schedule(np.int64(2**40))) == 0.0


def test_schedules_are_jit_safe_on_scalar_steps():
    schedule = ox.one_cycle(100, 1.0)
    scalar = jax.jit(schedule)
    vector = evaluate(schedule, 100)
    for t in (0, 29, 30, 99):
        assert float(scalar(jnp.asarray(t, jnp.int32))) == pytest.approx(vector[t], rel=1e-7)


# ------------------------------------------------------------------------------ validation

INVALID = [
    (lambda: ox.step_decay(0.1, 0), "step_size"),
    (lambda: ox.step_decay(0.1, -3), "step_size"),
    (lambda: ox.step_decay(0.1, 5, gamma=-0.1), "gamma"),
    (lambda: ox.multistep_decay(0.1, []), "milestones"),
    (lambda: ox.multistep_decay(0.1, [5, -1]), "milestones"),
    (lambda: ox.exponential_decay(0.1, 0, 0.9), "transition_steps"),
    (lambda: ox.exponential_decay(0.1, 10, 0.9, transition_begin=-1), "transition_begin"),
    (lambda: ox.exponential_decay(0.1, 10, -0.5), "decay_rate"),
    (lambda: ox.linear_schedule(0.1, 0.0, -5), "transition_steps"),
    (lambda: ox.polynomial_schedule(0.1, 0.0, 1.0, 10, transition_begin=-2),
     "transition_begin"),
    (lambda: ox.piecewise_constant_schedule(0.1, {}), "boundaries_and_scales"),
    (lambda: ox.piecewise_constant_schedule(0.1, {-4: 0.5}), "boundaries_and_scales"),
    (lambda: ox.piecewise_constant_schedule(0.1, {4: -0.5}), "boundaries_and_scales"),
    (lambda: ox.piecewise_constant_decay([], [0.1]), "boundaries"),
    (lambda: ox.piecewise_constant_decay([10, 5], [1.0, 0.5, 0.1]), "boundaries"),
    (lambda: ox.piecewise_constant_decay([10], [1.0]), "values"),
    (lambda: ox.join_schedules([ox.constant_schedule(1.0)] * 2, []), "boundaries"),
    (lambda: ox.join_schedules([ox.constant_schedule(1.0)] * 2, [-3]), "boundaries"),
    (lambda: ox.join_schedules([ox.constant_schedule(1.0)] * 3, [5]), "boundaries"),
    (lambda: ox.join_schedules([ox.constant_schedule(1.0)] * 3, [9, 4]), "boundaries"),
    (lambda: ox.cosine_decay_schedule(0.1, 0), "decay_steps"),
    (lambda: ox.cosine_annealing(0.1, -1), "t_max"),
    (lambda: ox.warmup_cosine_decay_schedule(0.0, 0.1, 50, 40), "decay_steps"),
    (lambda: ox.warmup_cosine_decay_schedule(0.0, 0.1, -1, 40), "warmup_steps"),
    (lambda: ox.cosine_annealing_warm_restarts(0.1, 0), "t_0"),
    (lambda: ox.cosine_annealing_warm_restarts(0.1, 10, 0), "t_mult"),
    (lambda: ox.cosine_annealing_warm_restarts(0.1, 10, 1.5), "t_mult"),
    (lambda: ox.cosine_decay_restarts(0.1, -5), "first_decay_steps"),
    (lambda: ox.cosine_decay_restarts(0.1, 5, t_mul=0.5), "t_mul"),
    (lambda: ox.one_cycle(0, 0.1), "total_steps"),
    (lambda: ox.one_cycle(100, 0.1, pct_start=1.5), "pct_start"),
    (lambda: ox.one_cycle(100, 0.1, anneal_strategy="cosine"), "anneal_strategy"),
    (lambda: ox.one_cycle(100, 0.1, div_factor=0.0), "div_factor"),
    (lambda: ox.one_cycle_momentum(100, anneal_strategy="exp"), "anneal_strategy"),
    (lambda: ox.cyclic(0.01, 0.1, mode="triangle"), "mode"),
    (lambda: ox.cyclic(0.01, 0.1, step_size_up=0), "step_size_up"),
    (lambda: ox.cyclic(0.01, 0.1, step_size_down=-1), "step_size_down"),
    (lambda: ox.cyclic_momentum(mode="exp"), "mode"),
    (lambda: ox.inverse_time_decay(0.1, 0, 0.5), "decay_steps"),
    (lambda: ox.inverse_time_decay(0.1, 10, -0.5), "decay_rate"),
    (lambda: ox.constant_schedule("fast"), "value"),
]


@pytest.mark.parametrize("make, argument", INVALID,
                         ids=[f"{i}-{a}" for i, (_, a) in enumerate(INVALID)])
def test_invalid_arguments_raise_value_error_naming_them(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()
