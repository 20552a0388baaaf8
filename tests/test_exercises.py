"""The fill-in exercises' checks: the library's own function passes, and each kind of wrong one fails with a hint."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from siampolar_lib.exercises import check_refinement_iteration, refinement_cases
from siampolar_lib.models.refine import RayRefiner, circular_pad


def iteration(stage, fmap, rays, pad=circular_pad, bound=torch.tanh, relu=True):
    """One refinement iteration from the stage's parts (what the exercise asks), with a mistake chosen by argument."""
    B, R = rays.shape
    mid = (stage.size - 1) / 2.0
    pts = mid + rays[:, :, None, None] * stage.samples[None, None, :, None] * stage.dirs[None, :, None, :]
    feat = F.grid_sample(fmap, (pts + 0.5) / stage.size * 2 - 1, align_corners=False)  # (B, C, R, T)
    feat = feat.permute(0, 1, 3, 2).reshape(B, -1, R)
    x = torch.cat([feat, feat.mean(-1, keepdim=True).expand(-1, -1, R),
                   torch.log(rays.clamp(min=1e-2) / stage.size)[:, None]], dim=1)
    for i, conv in enumerate(stage.ray_convs):
        x = conv(pad(x))
        if relu and i < len(stage.ray_convs) - 1:
            x = torch.relu(x)
    return rays * torch.exp(bound(x[:, 0]))


def test_the_library_and_a_correct_hand_version_pass(capsys):
    assert check_refinement_iteration(RayRefiner.step) == []
    assert check_refinement_iteration(iteration) == []
    assert capsys.readouterr().out.count(": ok") == 8


def test_an_unwritten_skeleton_fails_once_and_says_so(capsys):
    def skeleton(stage, fmap, rays):
        raise NotImplementedError

    problems = check_refinement_iteration(skeleton)
    assert len(problems) == 1 and "not written yet" in problems[0]
    assert "not written yet" in capsys.readouterr().out


def test_zero_padding_fails_and_points_at_the_circle():
    problems = check_refinement_iteration(lambda s, f, r: iteration(s, f, r, pad=lambda x: F.pad(x, (1, 1))))
    assert problems and all("circle" in p for p in problems if "36 rays" in p)


def test_no_padding_fails_on_the_shape():
    problems = check_refinement_iteration(lambda s, f, r: iteration(s, f, r, pad=lambda x: x))
    assert len(problems) == 4 and all("do not pad" in p for p in problems)


def test_an_unbounded_update_and_unchanged_rays_fail():
    assert check_refinement_iteration(lambda s, f, r: iteration(s, f, r, bound=lambda d: 5 * d))
    unchanged = check_refinement_iteration(lambda s, f, r: r)
    assert len(unchanged) == 4 and all("unchanged" in p for p in unchanged)


def test_a_missing_relu_fails():
    assert len(check_refinement_iteration(lambda s, f, r: iteration(s, f, r, relu=False))) == 4


def test_calling_the_stage_itself_is_refused_and_the_stage_is_restored():
    problems = check_refinement_iteration(lambda s, f, r: s.step(f, r))
    assert len(problems) == 4 and all("RuntimeError" in p for p in problems)
    name, stage, fmap, rays = refinement_cases()[0]
    assert "step" not in vars(stage) and stage.step(fmap, rays).shape == rays.shape


def test_the_cases_leave_the_callers_rng_alone_and_have_real_updates():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    cases = refinement_cases()
    assert torch.equal(torch.random.get_rng_state(), before)
    for name, stage, fmap, rays in cases:
        with torch.no_grad():
            change = (stage.step(fmap, rays) / rays).log().abs()
        assert change.max() > 0.01, name  # a non-identity stage: a wrong update cannot pass by accident
