"""Transformer teacher: shapes, padding invariance, value, per-robot export wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hd_deploy.models import TeacherConfig, TeacherPolicy

from ._helpers import RobotCase, ctrl_from_actions, pad_batch, randomize_normalizer

TINY = TeacherConfig.tiny()
MAX_LIMBS = TINY.max_limbs
ATOL = 1e-5


def make_teacher(seed: int = 0, config: TeacherConfig = TINY) -> TeacherPolicy:
    """A tiny teacher with non-trivial normaliser and large enough actions to clip."""
    torch.manual_seed(seed)
    teacher = TeacherPolicy(config)
    randomize_normalizer(teacher.normalizer, seed)
    with torch.no_grad():
        teacher.actor.head.weight.normal_(0.0, 0.5)
        teacher.actor.head.bias.normal_(0.0, 0.5)
    return teacher.eval()


def test_shapes_and_padded_limbs_are_zero(random_cases: list[RobotCase]) -> None:
    teacher = make_teacher()
    p, c, m, _ = pad_batch(random_cases, MAX_LIMBS)
    a = teacher.action_mean(p, c, m)
    v = teacher.value(p, c, m)
    assert a.shape == (len(p), MAX_LIMBS, 2) and v.shape == (len(p),)
    assert torch.all(a[~m] == 0)
    assert torch.isfinite(a).all() and torch.isfinite(v).all()
    assert teacher.action_std == pytest.approx(0.9)


@pytest.mark.parametrize("pos_embedding", [True, False])
def test_padding_does_not_change_real_limbs(
    random_cases: list[RobotCase], pos_embedding: bool
) -> None:
    cfg = TeacherConfig.from_dict({**TINY.to_dict(), "pos_embedding": pos_embedding})
    teacher = make_teacher(1, cfg)
    p, c, m, case_index = pad_batch(random_cases, MAX_LIMBS)
    a_pad = teacher.action_mean(p, c, m)
    v_pad = teacher.value(p, c, m)
    for ci, case in enumerate(random_cases):
        n, rows = case.robot.n_limbs, case_index == ci
        sub = (p[rows, :n], c[rows, :n], m[rows, :n])
        torch.testing.assert_close(a_pad[rows, :n], teacher.action_mean(*sub), rtol=0, atol=ATOL)
        torch.testing.assert_close(v_pad[rows], teacher.value(*sub), rtol=0, atol=ATOL)


def test_padding_garbage_is_ignored(random_cases: list[RobotCase]) -> None:
    teacher = make_teacher(2)
    p, c, m, _ = pad_batch(random_cases, MAX_LIMBS)
    p2, c2 = p.clone(), c.clone()
    p2[~m] = 1e3
    c2[~m] = -7.0
    torch.testing.assert_close(teacher.action_mean(p, c, m), teacher.action_mean(p2, c2, m))
    torch.testing.assert_close(teacher.value(p, c, m), teacher.value(p2, c2, m))


def test_actor_and_critic_parameters_partition_the_model() -> None:
    teacher = TeacherPolicy(TINY)
    actor = {id(x) for x in teacher.actor_parameters()}
    critic = {id(x) for x in teacher.critic_parameters()}
    assert actor and critic and not actor & critic
    assert actor | critic == {id(x) for x in teacher.parameters()}


def test_backward_reaches_every_parameter(random_cases: list[RobotCase]) -> None:
    teacher = make_teacher(3).train()
    p, c, m, _ = pad_batch(random_cases[:3], MAX_LIMBS)
    a, v = teacher(p, c, m)
    (a.square().sum() + v.square().sum()).backward()
    missing = [n for n, x in teacher.named_parameters() if x.grad is None]
    assert not missing


def test_shape_errors_are_clear() -> None:
    teacher = TeacherPolicy(TINY)
    with pytest.raises(ValueError, match=r"expected proprio \(B, L, 17\)"):
        teacher.action_mean(torch.zeros(2, 3, 16), torch.zeros(2, 3, 53), torch.ones(2, 3))
    with pytest.raises(ValueError, match="exceeds max_limbs = 12"):
        n = 13
        teacher.action_mean(
            torch.zeros(1, n, 17), torch.zeros(1, n, 53), torch.ones(1, n, dtype=torch.bool)
        )


def check_export_matches_padded_path(teacher: TeacherPolicy, cases: list[RobotCase]) -> None:
    p, c, m, case_index = pad_batch(cases, MAX_LIMBS)
    actions = teacher.action_mean(p, c, m)
    for ci, case in enumerate(cases):
        robot, rows = case.robot, case_index == ci
        wrapper = teacher.for_robot(robot, case.context)
        obs = torch.from_numpy(case.obs.reshape(len(case.obs), -1))
        ctrl = wrapper(obs)
        assert ctrl.shape == (len(case.obs), robot.n_actuators)
        expected = ctrl_from_actions(robot, actions[rows]).float()
        torch.testing.assert_close(ctrl, expected, rtol=0, atol=ATOL)
        # Robot.actions_to_ctrl is the numpy reference for the gather and scaling.
        np_ctrl = robot.actions_to_ctrl(actions[rows][0].detach().numpy())
        np.testing.assert_allclose(ctrl[0].detach().numpy(), np_ctrl, atol=ATOL)


def test_for_robot_matches_padded_policy_random_robots(random_cases: list[RobotCase]) -> None:
    check_export_matches_padded_path(make_teacher(4), random_cases)


def test_for_robot_matches_padded_policy_gym_robots(gym_cases: list[RobotCase]) -> None:
    check_export_matches_padded_path(make_teacher(5), gym_cases)


def test_for_robot_is_a_frozen_snapshot(random_cases: list[RobotCase]) -> None:
    teacher = make_teacher(6)
    case = random_cases[4]
    wrapper = teacher.for_robot(case.robot, case.context)
    obs = torch.from_numpy(case.obs.reshape(len(case.obs), -1))
    before = wrapper(obs)
    with torch.no_grad():
        for x in teacher.parameters():
            x.add_(1.0)
        teacher.normalizer.mean.add_(1.0)
    torch.testing.assert_close(wrapper(obs), before)
    assert not any(x.requires_grad for x in wrapper.parameters())
    assert wrapper.actor.pos is not None and wrapper.actor.pos.shape[0] == case.robot.n_limbs
    assert wrapper.dummy_input(3).shape == (3, case.robot.n_limbs * 17)


def test_for_robot_checks_context_shape(random_cases: list[RobotCase]) -> None:
    case = random_cases[0]
    with pytest.raises(ValueError, match=r"context must have shape \(2, 53\)"):
        TeacherPolicy(TINY).for_robot(case.robot, np.zeros((3, 53), dtype=np.float32))


# --- the packed training path --------------------------------------------------------


@pytest.mark.parametrize("pos_embedding", [True, False])
def test_packed_path_equals_the_padded_one(pos_embedding: bool) -> None:
    config = TeacherConfig.tiny().__class__(**{**TINY.to_dict(), "pos_embedding": pos_embedding})
    teacher = make_teacher(config=config)
    g = torch.Generator().manual_seed(0)
    b = 9
    p = torch.randn(b, MAX_LIMBS, 17, generator=g)
    c = torch.rand(b, MAX_LIMBS, 53, generator=g)
    counts = torch.tensor([1, 3, 3, 12, 5, 3, 7, 12, 2])
    m = torch.arange(MAX_LIMBS)[None] < counts[:, None]
    m[4, 1] = False  # a hole: packing must not assume real limbs come first
    packing, mean, value = teacher.packed(p, c, m)
    assert [k for _, k in packing.groups] == sorted({1, 2, 3, 4, 7, 12})
    torch.testing.assert_close(packing.unpack(mean, MAX_LIMBS), teacher.action_mean(p, c, m),
                               atol=ATOL, rtol=0)  # fmt: skip
    torch.testing.assert_close(value, teacher.value(p, c, m), atol=ATOL, rtol=0)


def test_packed_path_has_the_padded_gradients() -> None:
    grads = []
    for packed in (False, True):
        teacher = make_teacher().train()
        g = torch.Generator().manual_seed(1)
        p = torch.randn(6, MAX_LIMBS, 17, generator=g)
        c = torch.rand(6, MAX_LIMBS, 53, generator=g)
        m = torch.arange(MAX_LIMBS)[None] < torch.tensor([2, 5, 5, 9, 12, 3])[:, None]
        if packed:
            packing, mean, value = teacher.packed(p, c, m)
            loss = packing.sum(mean.pow(2).sum(-1)).sum() + value.pow(2).sum()  # type: ignore[union-attr]
        else:
            loss = teacher.action_mean(p, c, m).pow(2).sum() + teacher.value(p, c, m).pow(2).sum()
        loss.backward()
        grads.append(torch.cat([q.grad.flatten() for q in teacher.parameters()
                                if q.grad is not None]))  # fmt: skip
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-4)
