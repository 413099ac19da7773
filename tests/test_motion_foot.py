"""Issue 16 pieces of the motion model: the foot training terms (FK, foot velocity), fine-tuning from weights, partial
style guidance, the along-track metric and the style classifier."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import need_data

from realsim.sim.motion import data as md
from realsim.sim.motion.canon import FOOT_IDX, FPS, SL_CONTACT, SL_POS, SL_VEL, SL_YAW, J

WALK = "motion/bandai_namco/dataset-1/data/dataset-1_walk_happy_001.bvh"


@pytest.fixture(scope="module")
def walk_feat():
    return md.clip_features(md.clip_from_bvh(need_data(WALK), "happy", "walk"))


def test_fk_of_features_matches_stored_positions(walk_feat):
    from realsim.sim.motion.losses import fk_root_frame

    f = torch.from_numpy(walk_feat.feat).double()
    pos = fk_root_frame(f).numpy()
    np.testing.assert_allclose(pos, walk_feat.feat[:, SL_POS].reshape(-1, J, 3), atol=1e-5)


def test_foot_step_is_zero_for_a_planted_foot_under_a_moving_turning_root():
    """Root moves 1.2 m/s and turns 0.5 rad/s; a foot fixed in the world, expressed in each frame's root frame, must give
    zero displacement; the same foot carried along with the root moves at the root's speed."""
    from realsim.sim.motion.canon import rot_y
    from realsim.sim.motion.losses import foot_step

    T = 12
    feat = np.zeros((1, T, md.D_FEAT))
    feat[0, :, SL_VEL] = [0.0, 1.2]
    feat[0, :, SL_YAW] = 0.5
    xz, yaw = md.integrate_root(feat[0], np.zeros(2), np.zeros(()))
    world = np.array([0.3, 0.1, 0.5])                            # planted foot (x, y, z) in the model world
    pos = np.zeros((1, T, J, 3))
    for t in range(T):
        g = np.array([xz[t, 0], 0.0, xz[t, 1]])
        pos[0, t, :] = rot_y(yaw[t]).T @ (world - g)               # the same world point in root frame t
    step = foot_step(torch.from_numpy(pos), torch.from_numpy(feat)).numpy()
    assert step.shape == (1, T - 1, 4, 3)
    np.testing.assert_allclose(step, 0.0, atol=1e-9)
    pos[:] = 0.0                                                   # a foot at the root, carried with the body instead
    step = foot_step(torch.from_numpy(pos), torch.from_numpy(feat)).numpy()
    speed = np.linalg.norm(step[0, :, 0, [0, 2]].T, axis=-1) * FPS
    np.testing.assert_allclose(speed, 1.2, rtol=1e-9)              # the root's own speed


def test_geometric_losses_on_data_and_on_sliding_feet(walk_feat):
    from realsim.sim.motion.losses import geometric_losses

    f = torch.from_numpy(walk_feat.feat[:41]).float()
    past, x0 = f[None, 19], f[None, 20:40]
    gt = geometric_losses(x0, x0, past)
    assert gt["fk"] < 1e-6 and gt["contact"] == 0.0
    assert gt["foot_vel"] < 0.15                                   # real contacts: slow feet (measured 0.3 m/s rms)
    slide = x0.clone()
    slide[..., SL_VEL] += torch.tensor([0.0, 1.0])                 # the root glides 1 m/s faster, feet carried along
    bad = geometric_losses(slide, x0, past)
    assert bad["foot_vel"] > gt["foot_vel"] + 0.5                  # ~ (1 m/s)^2 more wherever a foot is in contact
    assert x0[..., SL_CONTACT].sum() > 0


def test_finetune_from_weights_keeps_normalisation_and_runs_foot_terms(walk_feat, tmp_path):
    from realsim.sim.motion.model import MotionModel
    from realsim.sim.motion.train import PRESETS, train

    ds = md.MotionDataset([walk_feat], ["happy"])
    base = train(ds, tmp_path / "a.safetensors", replace(PRESETS["tiny"], steps=5))
    log = tmp_path / "ft.jsonl"
    ft = train(ds, tmp_path / "b.safetensors", replace(PRESETS["tiny"], steps=2, w_foot=1.0, w_fk=1.0, w_contact=1.0,
                                                         init=str(tmp_path / "a.safetensors")), log_path=log)
    back = MotionModel.load(tmp_path / "b.safetensors")
    assert back.meta["init"]["steps"] == 5 and back.meta["steps"] == 2 and ft.meta["steps"] == 2
    torch.testing.assert_close(back.mean, base.mean)
    torch.testing.assert_close(back.std, base.std)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"foot_vel", "fk", "contact"} <= set(rows[0])
    with pytest.raises(Exception, match="styles"):
        train(md.MotionDataset([walk_feat], ["sad"]), tmp_path / "c.safetensors",
              replace(PRESETS["tiny"], steps=1, init=str(tmp_path / "a.safetensors")))


def test_guidance_on_no_steps_equals_no_guidance():
    from realsim.sim.motion.model import MotionModel, default_weights_path

    m = MotionModel.load(default_weights_path())
    B = 2
    past = m.idle[None, None].repeat(B, m.cfg.past, 1)
    traj, dense = torch.zeros(B, m.cfg.traj_points, 4), torch.zeros(B, m.cfg.future, 4)
    traj[..., 3] = dense[..., 3] = 1.0
    style = torch.tensor([1, 2])

    def run(**kw):
        return m.sample(past, traj, dense, style, steps=4, generator=torch.Generator().manual_seed(0), **kw)

    plain, off = run(), run(w_style=2.0, guide_steps=0)
    torch.testing.assert_close(plain, off)
    first, full = run(w_style=2.0, guide_steps=1), run(w_style=2.0)
    assert not torch.allclose(first, plain) and not torch.allclose(first, full)


def test_along_track_error_of_a_lagging_body():
    from realsim.sim.motion.metrics import along_track

    T = 90
    path = np.stack([np.arange(T + 20) * 0.04, np.zeros(T + 20)], -1)   # 1.2 m/s along +X
    body = path[1: T + 1] - np.array([0.2, 0.0]) + np.array([0.0, 0.05])  # 20 cm behind, 5 cm beside
    m = along_track(body, path)
    assert m["along_mean_cm"] == pytest.approx(20.0, abs=1e-6) and m["along_max_cm"] == pytest.approx(20.0, abs=1e-6)
    assert m["end_cm"] == pytest.approx(np.hypot(20.0, 5.0))
    # a closed circle: the nearest point is searched near the command, not across the loop
    a = np.arange(T + 20) / 30 * 1.2 / 0.3
    circ = np.stack([0.3 * np.sin(a), 0.3 * (1 - np.cos(a))], -1)
    assert along_track(circ[1: T + 1], circ)["along_max_cm"] < 1e-6


def test_style_classifier_separates_postures_and_mirrors():
    from realsim.sim.motion import style_classifier as sc

    assert sorted(sc._mirror_perm()) == list(range(J)) and [sc._mirror_perm()[i] for i in sc._mirror_perm()] == list(range(J))
    rng = np.random.default_rng(0)

    class C:  # two synthetic "styles": heads 10 cm apart in height, noisy
        def __init__(self, style, dz):
            self.style, self.action, self.source = style, "walk", f"{style}{dz}"
            self.feat = np.zeros((200, md.D_FEAT))
            pos = np.tile(md.SKELETON.fk(np.broadcast_to(np.eye(3), (J, 3, 3)), np.array([0, 0.9, 0]))[1], (200, 1, 1))
            pos[:, 4, 1] += dz + 0.02 * rng.standard_normal(200)
            self.feat[:, SL_POS] = pos.reshape(200, -1)

    walks = sc.style_walks([C("a", 0.0), C("a", 0.0), C("b", 0.1), C("b", 0.1)])
    acc, per = sc.held_out_accuracy(walks)
    assert acc == 1.0 and set(per) == {"a", "b"}
    clf = sc.train_on_walks(walks)
    assert clf.accuracy(sc.window_descriptors(C("b", 0.1).feat), 1) == 1.0
    assert sc.window_descriptors(np.zeros((59, md.D_FEAT))).shape[0] == 0
    assert len(FOOT_IDX) == 2


def test_foot_lock_follows_predicted_contacts():
    """By default a low foot is held only while the model flags contact; without the flag it follows the animation."""
    from realsim.sim.footlock import FootLock, FootLockConfig

    assert FootLockConfig().height_only is False
    lock = FootLock(1, [(0, 1, 2, 3)], np.array([0.1]), lambda xy: np.zeros(xy.shape[:-1]))
    ank = []
    for t in range(8):  # the animation slides a low foot 2 cm a frame; contact predicted from frame 3 on
        J = np.array([[[0.0, 0, 0.9], [0.05, 0, 0.5], [0.02 * t, 0, 0.1], [0.02 * t + 0.15, 0, 0.03]]])
        ank.append(lock.apply(J, np.array([[t >= 3]]))[0, 2, 0])
    np.testing.assert_allclose(ank[:3], [0.0, 0.02, 0.04], atol=1e-9)   # no flag: the animation's ankle
    np.testing.assert_allclose(ank[3:], 0.06, atol=1e-9)                 # flagged: held where it was at frame 3


def test_root_track_integrates_a_turn_and_track_loss_sees_a_slow_walk():
    """1.2 m/s with 0.5 rad/s of turn integrates onto the circle of radius 2.4 m (chord law, the controller's update order);
    the track term is 0 on the data itself and grows as the square of the distance lost by walking 10 % slower."""
    from realsim.sim.motion.losses import geometric_losses, root_track

    F = 20
    feat = np.zeros((1, F, md.D_FEAT))
    feat[0, :, SL_VEL] = [0.0, 1.2]
    feat[0, :, SL_YAW] = 0.5
    tr = root_track(torch.from_numpy(feat))[0].numpy()                           # [F,2] (x, z)
    xz, _ = md.integrate_root(feat[0], np.zeros(2), np.zeros(()))
    np.testing.assert_allclose(tr[:-1], xz[1:] - xz[0], atol=1e-12)               # the data's own root integration
    d, th = 1.2 / FPS, 0.5 / FPS                                                  # step length and turn per frame
    k = np.arange(F)
    heading = th * k                                                              # step k uses the heading before its turn
    ref = np.stack([np.cumsum(d * np.sin(heading)), np.cumsum(d * np.cos(heading))], -1)
    np.testing.assert_allclose(tr, ref, atol=1e-12)
    x0 = torch.from_numpy(feat).float()
    same = geometric_losses(x0, x0, x0[:, 0])["track"]
    slow = x0.clone()
    slow[..., SL_VEL] *= 0.9
    lost = geometric_losses(slow, x0, x0[:, 0])["track"]
    expect = float(np.mean((0.1 * np.linalg.norm(ref, axis=-1)) ** 2))            # the slow track is 0.9x the true one
    assert float(same) == 0.0
    assert float(lost) == pytest.approx(expect * 100.0, rel=1e-4)                 # cm^2 / 100


def test_released_foot_height_follows_the_animation_while_it_blends_back_horizontally():
    """After the contact flag ends the foot lifts with the animation at once; only the horizontal hold blends away (by
    1/blend_frames of what is left per frame), so the catch-up happens in the air rather than along the floor."""
    from realsim.sim.footlock import FootLock, FootLockConfig

    lock = FootLock(1, [(0, 1, 2, 3)], np.array([0.1]), lambda xy: np.zeros(xy.shape[:-1]), FootLockConfig(blend_frames=4))
    out = []
    for t in range(6):  # slides 2 cm a frame; flagged at frames 0-2, then lifts 4 cm a frame
        z = 0.1 + 0.04 * max(0, t - 2)
        J = np.array([[[0.0, 0, 0.85], [0.15, 0, 0.5], [0.02 * t, 0, z], [0.02 * t + 0.15, 0, z - 0.07]]])  # legs in reach
        out.append(lock.apply(J, np.array([[t <= 2]]))[0, 2])
    out = np.array(out)
    np.testing.assert_allclose(out[:3, 0], 0.0, atol=1e-9)                       # held at the touch-down point
    np.testing.assert_allclose(out[3:, 2], [0.14, 0.18, 0.22], atol=1e-6)         # height: the animation's, at once
    lag = 0.02 * np.arange(3, 6) - out[3:, 0]                                     # horizontal hold left: 6 cm, then 3/4 per frame
    np.testing.assert_allclose(lag, 0.06 * 0.75 ** np.arange(3), atol=1e-6)
    old = FootLock(1, [(0, 1, 2, 3)], np.array([0.1]), lambda xy: np.zeros(xy.shape[:-1]),
                   FootLockConfig(blend_frames=4, blend_height=True))
    for t in range(4):
        z = 0.1 + 0.04 * max(0, t - 2)
        J = np.array([[[0.0, 0, 0.85], [0.15, 0, 0.5], [0.02 * t, 0, z], [0.02 * t + 0.15, 0, z - 0.07]]])  # legs in reach
        a = old.apply(J, np.array([[t <= 2]]))[0, 2]
    assert a[2] == pytest.approx(0.10, abs=1e-6)                                  # blend_height: still on the floor


def test_style_balanced_window_sampling():
    """finetune_style draws windows so that each style present has the same total probability, uniform within a style."""
    from realsim.sim.motion.train import PRESETS, style_balanced_p

    style = np.array([0] * 90 + [2] * 9 + [5])
    p = style_balanced_p(style)
    np.testing.assert_allclose([p[style == s].sum() for s in (0, 2, 5)], 1 / 3, rtol=1e-12)
    np.testing.assert_allclose(p[:90], 1 / 270, rtol=1e-12)
    assert PRESETS["finetune_style"].balance_styles and not PRESETS["finetune_speed"].balance_styles


def test_turn_boosted_window_sampling():
    """turn_boosted_p draws windows that walk (> 0.5 m/s) and turn (> 0.3 rad/s over their frames) `boost` times as often."""
    from realsim.sim.motion.train import PRESETS, turn_boosted_p

    F = 20
    t = np.arange(1, F + 1) / 30.0
    dense = np.zeros((4, F, 4))
    dense[..., 3] = 1.0
    for i, (v, w) in enumerate([(1.2, 0.6), (1.2, 0.1), (0.2, 0.6), (1.2, -0.6)]):  # speed m/s, yaw rate rad/s
        dense[i, :, 0] = v * t
        dense[i, :, 2], dense[i, :, 3] = np.sin(w * t), np.cos(w * t)
    p = turn_boosted_p(None, dense, 3.0)
    np.testing.assert_allclose(p, np.array([3, 1, 1, 3]) / 8, rtol=1e-12)
    assert turn_boosted_p(None, dense, 1.0) is None and PRESETS["finetune_turn"].turn_boost == 2.0

