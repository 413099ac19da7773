"""Motion data, model and controller: features round trip, retargeting, overfitting one clip, shipped weights on a path."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import need_data

from realsim.sim.motion import data as md
from realsim.sim.motion.data import SL_POS, J, MotionDataset, clip_features, clip_from_bvh, features_to_poses

WALK = "motion/bandai_namco/dataset-1/data/dataset-1_walk_happy_001.bvh"


@pytest.fixture(scope="module")
def walk_clip():
    return clip_from_bvh(need_data(WALK), "happy", "walk")


def test_features_to_poses_round_trip(walk_clip):
    cf = clip_features(walk_clip)
    assert cf.feat.shape == (walk_clip.n_frames, md.D_FEAT)
    pos = walk_clip.positions()
    P = features_to_poses(cf.feat, cf.root_xz[0], cf.yaw[0])
    # root integrated from per-frame velocities + 6D rotations through FK reproduce the mocap joints
    assert np.abs(P.joints - pos).max() < 1e-4
    # the stored joint positions agree with FK in the root frame
    lp = cf.feat[:, SL_POS].reshape(-1, J, 3)
    assert np.abs(lp[:, 0, [0, 2]]).max() < 1e-5 and np.abs(lp[:, 0, 1] - pos[:, 0, 1]).max() < 1e-5
    # a real walk: ~1-1.5 m/s forward, both feet in contact about half the time
    assert 0.8 < cf.feat[:, 1].mean() < 1.6
    assert 0.3 < cf.feat[:, md.SL_CONTACT].mean() < 0.8


def test_retarget_positions_exact_on_canonical(walk_clip):
    pos = walk_clip.positions()
    L, root = md.retarget_positions(pos)
    _, p2 = md.SKELETON.fk(L, root)
    assert np.abs(p2 - pos).max() < 1e-6


def test_cmu_clip_retargets_to_canonical():
    src = need_data("motion/cmu_12_01_walk/cmu_12_01_walk.bvh")
    c = clip_from_bvh(src)
    assert c.n_frames == 131                         # 524 frames at 120 fps -> 30 fps
    pos = c.positions()
    bone = np.linalg.norm(pos[:, 15] - pos[:, 14], axis=-1)        # shin keeps the canonical length
    np.testing.assert_allclose(bone, np.linalg.norm(md.SKELETON.offsets[15]), rtol=1e-6)
    assert 0.8 < pos[:, 0, 1].mean() < 1.05 and pos[:, 4, 1].mean() > 1.3   # hips ~0.9 m, head above 1.3 m
    cf = clip_features(c)
    speed = np.linalg.norm(cf.feat[:, :2], axis=1).mean()
    assert 0.5 < speed < 1.8                         # a walk
    assert 0.2 < cf.feat[:, md.SL_CONTACT].mean() < 0.9


def test_model_overfits_one_clip(walk_clip, tmp_path):
    from realsim.sim.motion.model import MotionDenoiser, MotionModel
    from realsim.sim.motion.train import PRESETS, make_windows, train

    ds = MotionDataset([clip_features(walk_clip)], ["happy"])
    m = train(ds, tmp_path / "of.safetensors", replace(PRESETS["tiny"]))
    m = MotionModel.load(tmp_path / "of.safetensors")          # what was written is what is evaluated
    win = make_windows(ds, m.cfg)
    idx = np.arange(0, len(win.cur), 10)
    c = win.cur[idx]
    P, F = m.cfg.past, m.cfg.future
    past = torch.from_numpy(win.feat[c[:, None] + np.arange(-P + 1, 1)])
    gt = win.feat[c[:, None] + np.arange(1, F + 1)]

    def errors(model):
        out = model.sample(past, torch.from_numpy(win.traj[idx]), torch.from_numpy(win.dense[idx]),
                           torch.zeros(len(idx), dtype=torch.long), generator=torch.Generator().manual_seed(0)).numpy()
        pe = np.linalg.norm((out[..., SL_POS] - gt[..., SL_POS]).reshape(len(idx), F, J, 3), axis=-1).mean()
        return pe, np.abs(out[..., :2] - gt[..., :2]).mean()

    pe, ve = errors(m)
    pe0, ve0 = errors(MotionModel(m.cfg, MotionDenoiser(m.cfg), m.mean, m.std, m.styles, m.skeleton))
    assert pe < 0.03 and ve < 0.08, (pe, ve)         # measured 1.2 cm / 0.03 m/s
    assert pe < 0.25 * pe0, (pe, pe0)


def test_controller_api_shapes_and_world_frame():
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.model import default_weights_path

    if not default_weights_path().is_file():
        pytest.fail("shipped motion weights missing")
    ctrl = MotionController.from_default(3, styles=["neutral", "happy", "tired"],
                                         ground_height=lambda xy: 0.5 + 0.1 * xy[:, 0], seed=0)
    assert ctrl.skeleton.n_joints == J and len(ctrl.skeleton.coco17()) == 17
    ctrl.reset(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), np.array([0.0, np.pi / 2, np.pi]))
    fut = np.zeros((3, 30, 2))
    for t in range(12):
        pose = ctrl.step(fut + np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])[:, None])
    assert pose.joints.shape == (3, J, 3) and pose.global_rot.shape == (3, J, 3, 3) and pose.contacts.shape == (3, 2)
    head, hips = ctrl.skeleton.index("Head"), 0
    # +Z up: head above hips above the ground callback's height (0.5 + 0.1 x)
    assert (pose.joints[:, head, 2] > pose.joints[:, hips, 2] + 0.3).all()
    np.testing.assert_allclose(pose.root[:, 2], 0.5 + 0.1 * pose.root[:, 0])
    assert (pose.joints[:, hips, 2] - pose.root[:, 2] > 0.7).all()
    # told to stand still, agents stay near their start
    assert np.linalg.norm(pose.root[:, :2] - np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), axis=1).max() < 0.3
    R = pose.global_rot
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)


@pytest.mark.parametrize("correction,bounds", [
    # (traj mean cm, traj max cm, heading deg, end error m); measured over seeds 0-3 on the shipped weights:
    # with the default path correction 1.1-1.5 / 3.2-4.6 / 0.4-0.5 / <= 0.06; model alone 2.6-2.9 / 9.4-11 / 0.9-1.1 / <= 0.15
    (0.1, (5.0, 12.0, 5.0, 0.25)),
    (0.0, (8.0, 25.0, 5.0, 0.40)),
])
def test_shipped_walk_follows_straight_5m_path(correction, bounds):
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.metrics import path_metrics
    from realsim.sim.motion.sample import rollout

    ctrl = MotionController.from_default(2, styles=["neutral", "happy"], seed=1, correction=correction)
    n = 4 * 30 + 60
    x = np.minimum(np.arange(n + 46) * 1.25 / 30, 5.0)          # 5 m at 1.25 m/s, then stand
    path = np.stack([x, np.zeros_like(x)], -1)
    ro = rollout(ctrl, path, n)
    m = path_metrics(ro, path)
    end = ro.root[:, -1, :2]
    assert max(m["traj_mean_cm"]) < bounds[0] and max(m["traj_max_cm"]) < bounds[1], m
    assert max(m["heading_deg"]) < bounds[2], m
    assert np.linalg.norm(end - np.array([5.0, 0.0]), axis=1).max() < bounds[3], end
    # it actually walked: the hips moved forward at a walking pace, not a slide of a standing pose
    assert ro.contacts[:, 30:120].mean() < 0.95


def test_sample_cli_writes_bvh_and_mp4(tmp_path, capsys):
    import av

    from realsim.assets.bvh import read_bvh
    from realsim.cli.main import main

    out = tmp_path / "walk"
    rc = main(["-q", "motion", "sample", "--path", "circle", "--style", "neutral", "--seconds", "2", "--seed", "0",
               "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    b = read_bvh(tmp_path / "walk.bvh")
    assert b.n_frames == 60 and abs(b.fps - 30) < 1e-3 and b.names[0] == "Hips"
    trans, _ = b.local_transforms()
    assert 0.7 < trans[:, 0, 1].mean() < 1.1          # metres, Y up: hips about 0.9 m high
    # the world circle (centre (0, 2), radius 2, Z up) is model (x, z) = world (y, x): hips stay ~2 m from (2, 0)
    r = np.linalg.norm(trans[15:, 0, [0, 2]] - np.array([2.0, 0.0]), axis=1)
    assert np.abs(r - 2.0).max() < 0.3, r
    with av.open(str(tmp_path / "walk.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 60 and frames[0].shape == (480, 640, 3)
    assert frames[30].std() > 5                        # something was drawn
    rc = main(["-q", "motion", "sample", "--style", "nope", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc != 0 and "unknown style" in err and "Traceback" not in err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    rc = main(["-q", "motion", "sample", "--weights", str(bad), "-o", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err and not (tmp_path / "y.bvh").exists()
    # a waypoint file (world x, y in metres) instead of a named path
    wp = tmp_path / "wp.json"
    wp.write_text("[[0, 0], [1, 0], [1, 1]]")
    rc = main(["-q", "motion", "sample", "--path", str(wp), "--seconds", "1", "--no-video", "-o", str(tmp_path / "wp")])
    assert rc == 0 and read_bvh(tmp_path / "wp.bvh").n_frames == 30
    wp.write_text("[[0, 0]]")
    rc = main(["-q", "motion", "sample", "--path", str(wp), "-o", str(tmp_path / "wp2")])
    err = capsys.readouterr().err
    assert rc != 0 and "at least two" in err


def test_shared_skating_metric_on_known_motion():
    """metrics.skating: a joint sliding 1 cm/frame on the floor at 30 fps skates 30 cm/s; still or lifted joints add 0."""
    from realsim.sim.motion.metrics import skating

    T = 31
    j = np.zeros((T, 4, 3))
    j[:, 0, 0] = np.arange(T) * 0.01
    assert skating(j, 0.0, [0]) == pytest.approx(30.0)
    assert skating(j, 0.0, [0, 1, 2, 3]) == pytest.approx(7.5)  # per contact frame of all four joints
    still = np.zeros((T, 1, 3))  # 10 frames standing, then lifted 10 cm and moving 1 cm a frame: the 9 still pairs and
    still[10:, 0, 2] = 0.1  # the lift-off pair (lower frame on the floor) are contact frames -> 30 cm/s / 10
    still[10:, 0, 0] = 0.01 * np.arange(1, T - 9)
    assert skating(still, np.zeros(T), [0]) == pytest.approx(3.0)
    k = np.zeros((T, 1, 3))
    k[:, 0, 0] = np.arange(T) * 0.01
    k[:, 0, 2] = 0.0125  # half-way up the 2.5 cm band, constant: GMD weight 2 - 2^0.5 (lowest is 0.0125 -> height 0)
    assert skating(k, 0.0, [0]) == pytest.approx(30.0)
    k[0, 0, 2] = 0.0  # now the lowest is 0: the rest sit at 1.25 cm, weighted 2 - sqrt(2)
    assert skating(k, 0.0, [0]) == pytest.approx(30.0 * (29 * (2 - 2 ** 0.5) + 1) / 30, rel=1e-6)


def test_pairwise_joint_distance_and_root_frame():
    from realsim.sim.motion.variety import pairwise_joint_distance, root_frame_joints

    base = np.zeros((3, 5, 2, 3))
    base[1, ..., 0] += 0.1  # agent 1's joints 10 cm further forward, agent 2 3 cm up
    base[2, ..., 2] += 0.03
    assert pairwise_joint_distance(base) == pytest.approx((0.1 + 0.03 + np.hypot(0.1, 0.03)) / 3)
    # a body turned 90 degrees and moved: same root-frame joints
    J = np.array([[[0.0, 0.0, 1.0], [0.2, 0.1, 0.5]]])
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    J2 = J @ R.T + np.array([3.0, 4.0, 0.0])
    a = root_frame_joints(J, J[:, 0, :2], np.zeros(1))
    b = root_frame_joints(J2, J2[:, 0, :2], np.full(1, np.pi / 2))
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_controller_shift_is_kept_and_past_noise_varies_agents():
    """The crowd's correction moves the controller's own root (no snap back); per-agent start noise makes agents differ."""
    from realsim.sim.motion.controller import MotionController

    ctrl = MotionController.from_default(2, seed=0)
    ctrl.reset(np.zeros((2, 2)), np.zeros(2))
    for _ in range(5):
        ctrl.step(np.zeros((2, 30, 2)))
    ctrl.shift(np.array([[0.3, 0.0], [0.0, -0.2]]))
    pose = ctrl.step(np.repeat(np.array([[[0.3, 0.0]], [[0.0, -0.2]]]), 30, 1))
    np.testing.assert_allclose(pose.root[:, :2], [[0.3, 0.0], [0.0, -0.2]], atol=0.05)
    same = MotionController.from_default(2, seed=0, past_noise=0.0)
    var = MotionController.from_default(2, seed=0, past_noise=1.0)
    assert np.allclose(same.past[0], same.past[1]) and not np.allclose(var.past[0], var.past[1])


def test_two_bone_ik_and_foot_lock():
    """IK keeps bone lengths and reaches the target; a locked foot stays put while the animation slides it."""
    from realsim.sim.footlock import FootLock, FootLockConfig, two_bone_ik

    hip, knee, ank = np.array([[0.0, 0.0, 0.9]]), np.array([[0.05, 0.0, 0.5]]), np.array([[0.0, 0.0, 0.1]])
    tgt = np.array([[0.2, 0.05, 0.2]])  # within reach (0.81 m of leg)
    k, a = two_bone_ik(hip, knee, ank, tgt)
    np.testing.assert_allclose(a, tgt, atol=1e-9)
    assert np.linalg.norm(k - hip) == pytest.approx(np.linalg.norm(knee - hip))
    assert np.linalg.norm(a - k) == pytest.approx(np.linalg.norm(ank - knee))
    assert k[0, 0] > 0.1  # still bends forward, like the pose's knee
    # one agent, left leg only (joints: hip, knee, ankle, toe), planted ankle height 0.1 m on flat ground
    lock = FootLock(1, [(0, 1, 2, 3)], np.array([0.1]), lambda xy: np.zeros(xy.shape[:-1]),
                    FootLockConfig(height_only=True, release_m=0.3))
    out = []
    for t in range(6):  # the animation slides the planted foot 2 cm a frame
        J = np.array([[[0.0, 0, 0.9], [0.05, 0, 0.5], [0.02 * t, 0, 0.1], [0.02 * t + 0.15, 0, 0.03]]])
        out.append(lock.apply(J, np.ones((1, 1), bool))[0])
    out = np.array(out)
    np.testing.assert_allclose(out[:, 2], np.repeat([[0.0, 0.0, 0.1]], 6, 0), atol=1e-9)  # ankle held where it landed
    np.testing.assert_allclose(out[:, 3] - out[:, 2], np.repeat([[0.15, 0, -0.07]], 6, 0), atol=1e-9)  # toe follows
    # the held foot pulls the body towards it: half the drift, at most 1.5 cm a frame
    J = np.array([[[0.0, 0, 0.9], [0.05, 0, 0.5], [0.01, 0, 0.1], [0.16, 0, 0.03]]])
    np.testing.assert_allclose(lock.root_pull(J, 0.5), [[-0.005, 0.0]], atol=1e-12)
    J[0, 2, 0] = 0.1
    np.testing.assert_allclose(lock.root_pull(J, 1.0), [[-0.015, 0.0]], atol=1e-12)
