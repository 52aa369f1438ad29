"""Learning-rate schedules against torch.optim.lr_scheduler and hand values."""
import math

import pytest
import torch
from torch.optim import lr_scheduler

from games.errors import ConfigError
from games.schedules import SCHEDULES, Constant, Schedule, as_schedule, make_schedule

LR, STEPS = 0.3, 50


def torch_rates(make, steps=STEPS, lr=LR):
    """The learning rate torch uses at updates k = 0, ..., steps − 1 under scheduler ``make``."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    scheduler = make(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(
    "name, options, make",
    [
        ("constant", {}, lambda o: lr_scheduler.ConstantLR(o, factor=1.0)),
        ("step", {"milestones": list(range(7, STEPS, 7)), "gamma": 0.5},
         lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
        ("step", {"milestones": [5, 12, 30]}, lambda o: lr_scheduler.MultiStepLR(o, [5, 12, 30], gamma=0.1)),
        ("step", {"milestones": [1, 2, 40], "gamma": 0.7},
         lambda o: lr_scheduler.MultiStepLR(o, [1, 2, 40], gamma=0.7)),
        ("exponential", {"gamma": 0.9}, lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9)),
        ("exponential", {"gamma": 1.0}, lambda o: lr_scheduler.ExponentialLR(o, gamma=1.0)),
        ("cosine", {"total_steps": STEPS - 1}, lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS - 1)),
        ("cosine", {"total_steps": STEPS - 1, "lr_min": 0.01},
         lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS - 1, eta_min=0.01)),
    ],
)
def test_matches_torch_scheduler(name, options, make):
    schedule = make_schedule(name, LR, **options)
    ours = [schedule(k) for k in range(STEPS)]
    assert all(isinstance(r, float) for r in ours)
    assert ours == pytest.approx(torch_rates(make), rel=1e-12, abs=1e-15)


def test_cosine_stays_at_minimum_after_total_steps():
    schedule = make_schedule("cosine", LR, total_steps=10, lr_min=0.05)
    assert schedule(0) == LR
    assert schedule(5) == pytest.approx((LR + 0.05) / 2)
    assert [schedule(k) for k in (10, 11, 100)] == pytest.approx([0.05] * 3, abs=1e-15)


def test_inverse_time():
    schedule = make_schedule("inverse_time", 0.1, decay=0.5)
    assert [schedule(k) for k in (0, 2, 6)] == pytest.approx([0.1, 0.05, 0.025], rel=1e-15)
    schedule = make_schedule("inverse_time", 0.1, decay=0.5, power=0.5)
    assert [schedule(k) for k in (0, 6, 30)] == pytest.approx([0.1, 0.05, 0.025], rel=1e-15)


def test_piecewise():
    schedule = make_schedule("piecewise", 2.0, boundaries=[3, 5], values=[1.0, 0.5, 0.1])
    assert [schedule(k) for k in range(8)] == pytest.approx([2, 2, 2, 1, 1, 0.2, 0.2, 0.2], rel=1e-15)
    assert make_schedule("piecewise", 2.0, boundaries=[], values=[0.25])(1000) == 0.5


def test_as_schedule():
    assert as_schedule(0.1) == Constant(0.1) and as_schedule(0.1)(7) == 0.1
    step = make_schedule("step", 1.0, milestones=[2])
    assert as_schedule(step) is step
    wrapped = as_schedule(lambda k: 1 / (k + 1))
    assert isinstance(wrapped, Schedule)
    assert [wrapped(k) for k in range(3)] == [1.0, 0.5, 1 / 3]
    assert isinstance(as_schedule(lambda k: torch.tensor(0.5))(0), float)


def test_frozen():
    schedule = make_schedule("exponential", 0.1, gamma=0.5)
    with pytest.raises(AttributeError):
        schedule.gamma = 0.9
    assert hash(make_schedule("step", 0.1, milestones=[1, 2])) is not None


def test_names():
    assert SCHEDULES == ("constant", "step", "exponential", "inverse_time", "cosine", "piecewise")


@pytest.mark.parametrize(
    "name, lr, options, field",
    [
        ("linear", 0.1, {}, "s"),
        ("constant", 0.0, {}, "s.lr"),
        ("constant", -1.0, {}, "s.lr"),
        ("constant", math.nan, {}, "s.lr"),
        ("constant", math.inf, {}, "s.lr"),
        ("constant", 0.1, {"gamma": 0.5}, "s.gamma"),
        ("step", 0.1, {}, "s.milestones"),
        ("step", 0.1, {"milestones": [5, 3]}, "s.milestones"),
        ("step", 0.1, {"milestones": [5, 5]}, "s.milestones"),
        ("step", 0.1, {"milestones": [2.5]}, "s.milestones[0]"),
        ("step", 0.1, {"milestones": [0, 3]}, "s.milestones[0]"),
        ("step", 0.1, {"milestones": 5}, "s.milestones"),
        ("step", 0.1, {"milestones": [5], "gamma": 0.0}, "s.gamma"),
        ("step", 0.1, {"milestones": [5], "gamma": 1.5}, "s.gamma"),
        ("step", 0.1, {"milestones": [5], "step_size": 3}, "s.step_size"),
        ("exponential", 0.1, {}, "s.gamma"),
        ("exponential", 0.1, {"gamma": math.nan}, "s.gamma"),
        ("inverse_time", 0.1, {"decay": -1.0}, "s.decay"),
        ("inverse_time", 0.1, {"decay": 1.0, "power": 0.0}, "s.power"),
        ("cosine", 0.1, {"total_steps": 0}, "s.total_steps"),
        ("cosine", 0.1, {"total_steps": 10.5}, "s.total_steps"),
        ("cosine", 0.1, {"total_steps": 10, "lr_min": 0.2}, "s.lr_min"),
        ("piecewise", 0.1, {"boundaries": [3], "values": [1.0]}, "s.values"),
        ("piecewise", 0.1, {"boundaries": [3], "values": [1.0, -0.5]}, "s.values[1]"),
        ("piecewise", 0.1, {"boundaries": [3, 2], "values": [1.0, 1.0, 1.0]}, "s.boundaries"),
    ],
)
def test_config_errors(name, lr, options, field):
    with pytest.raises(ConfigError) as err:
        make_schedule(name, lr, field="s", **options)
    assert err.value.field == field


def test_config_error_default_field_and_as_schedule():
    with pytest.raises(ConfigError) as err:
        make_schedule("nope", 0.1)
    assert err.value.field == "schedule"
    for bad in (-0.1, math.nan, "fast", None):
        with pytest.raises(ConfigError) as err:
            as_schedule(bad)
        assert err.value.field == "lr"
