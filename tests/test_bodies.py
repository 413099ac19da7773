"""The skinned agent body (sim/body.py, sim/skin.py): exact rest pose, analytic joint rotations, face keypoints from the
head, the rendered mask against the mesh, and the torso around the skeleton's own shoulders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.sim.body import BodyModel, coco17_points, random_looks
from realsim.sim.gait import BASIC_SKELETON
from realsim.sim.motion.canon import SKELETON


def _rot(axis, deg: float) -> np.ndarray:
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K


def _turn(body: BodyModel, P: np.ndarray, j: int, R: np.ndarray) -> np.ndarray:
    """Joints P [A,J,3] with joint j's subtree turned by R about joint j."""
    out = P.copy()
    for k in body._descendants(j):
        out[:, k] = (P[:, k] - P[:, j]) @ R.T + P[:, j]
    return out


@pytest.fixture(scope="module", params=["canonical", "procedural"])
def body(request):
    return BodyModel(SKELETON if request.param == "canonical" else BASIC_SKELETON)


def test_rest_pose_reproduces_the_bind_mesh_exactly(body):
    looks = random_looks(3, np.random.default_rng(4))
    B = body.bind_joints(np.repeat(body._template_joints(), 3, 0) * np.array([1.0, 1.1, 0.9])[:, None, None])
    shift = np.array([[2.0, -1.0, 0.3]])
    out = body.vertices(B + shift[:, None], None, looks)
    ref = body.bind_vertices(B, looks) + shift[:, None]
    assert np.abs(out - ref).max() < 1e-12
    np.testing.assert_allclose(body.joint_w.sum(1), 1.0, atol=1e-12)
    assert body.faces.max() < body.n_verts and len(body.faces) > 1500


def test_a_turned_elbow_moves_only_its_vertices_by_the_rotation(body):
    looks = random_looks(1, np.random.default_rng(0))
    B = body.bind_joints(body._template_joints())
    el, wr = body.sem["l_elbow"], body.sem["l_wrist"]
    fore = B[0, wr] - B[0, el]
    R = _rot(np.cross(fore, [1.0, 0, 0]), 70.0)  # bend about an axis across the forearm (a pure swing)
    P = _turn(body, B, el, R)
    out = body.vertices(P, None, looks)[0]
    rest = body.bind_vertices(B, looks)[0]
    sub = [el] + body._descendants(el)
    w_sub = (body.joint_w * np.isin(body.joint_idx, sub)).sum(1)  # weight on the turned subtree per vertex
    still, moved = w_sub == 0, w_sub > 1 - 1e-12
    assert still.sum() > 500 and moved.sum() > 50
    assert np.abs(out[still] - rest[still]).max() < 1e-12
    np.testing.assert_allclose(out[moved], (rest[moved] - B[0, el]) @ R.T + B[0, el], atol=1e-9)
    mid = ~still & ~moved  # blended around the elbow: between the two
    d = np.linalg.norm(out[mid] - rest[mid], axis=1)
    full = np.linalg.norm((rest[mid] - B[0, el]) @ R.T + B[0, el] - rest[mid], axis=1)
    assert mid.any() and (d <= full + 1e-9).all()


def test_face_keypoints_follow_the_head_not_the_heading(body):
    B = body.bind_joints(body._template_joints())
    kp0 = coco17_points(body.skeleton, B, np.zeros(1))[0]
    nose_dir = kp0[0] - 0.5 * (kp0[3] + kp0[4])
    assert nose_dir[0] > 0.05 and abs(nose_dir[1]) < 1e-9  # the bind body faces +X
    chest = body.parents[body.sem["l_shoulder"]]
    while chest not in body._ancestors(body.sem["head"]):
        chest = body.parents[chest]
    R = _rot([0, 0, 1.0], 40.0)  # upper body turned 40 degrees left, the root (heading 0) not
    P = _turn(body, B, chest, R)
    kp = coco17_points(body.skeleton, P, np.zeros(1))[0]
    np.testing.assert_allclose(kp[:5], (kp0[:5] - B[0, chest]) @ R.T + B[0, chest], atol=1e-9)
    neck = body.sem["neck"]
    Rn = _rot([0, 1.0, 0], 25.0)  # nod: the head bone tips forward about the neck
    P2 = _turn(body, B, neck, Rn)
    kp2 = coco17_points(body.skeleton, P2, np.zeros(1))[0]
    np.testing.assert_allclose(kp2[:5], (kp0[:5] - B[0, neck]) @ Rn.T + B[0, neck], atol=1e-9)
    np.testing.assert_allclose(kp2[5:], P2[0, body.skeleton.coco17()[5:]], atol=0)


def test_torso_sits_inside_the_skeletons_shoulders():
    """The tube body's torso was wider than the mocap skeleton's shoulder joints (10 cm from the spine), so the upper arms
    came out of its sides; the skinned torso's half-width at the armpits is within 3 cm of the shoulder joints."""
    body = BodyModel(SKELETON)
    look = random_looks(1, np.random.default_rng(0))
    look[0].shoulders = 1.0
    B = body.bind_joints(body._template_joints())
    v = body.bind_vertices(B, look)[0]
    s = body.sem
    lat = 0.5 * abs(B[0, s["l_shoulder"], 1] - B[0, s["r_shoulder"], 1])
    z = B[0, s["l_shoulder"], 2] - 0.13
    torso = np.array([k == "shirt" for k in body.v_key])
    band = torso & (np.abs(v[:, 2] - z) < 0.03)
    assert band.sum() > 10
    assert np.abs(v[band, 1]).max() < lat + 0.03 * look[0].build + 1e-9


def test_rendered_agent_mask_is_the_projected_mesh():
    """The instance mask of the composited frame is the agent's own skinned mesh, rasterised alone."""
    from realsim.render.mesh import render_mesh
    from realsim.sim.loop import run_sim
    from realsim.sim.outputs import render_frame
    from realsim.sim.scenario import AgentSpec, Scenario
    from realsim.sim.world import World

    n = 40
    world = World(np.array([0, 0, 1.0, 0]), np.array([-5.0, -5.0]), 0.25, np.ones((n, n), bool), np.zeros((n, n), bool),
                  np.ones((n, n), bool))
    sc = Scenario(agents=[AgentSpec(start=(-1.0, 0.0), goals=[(-1.0, 3.0)]), AgentSpec(start=(1.0, 0.0), goals=[(1.0, 3.0)])],
                  duration=1.0, fps=30.0, seed=2)
    sim = run_sim(world, sc, motion="procedural")
    W, H = 160, 120
    K = np.array([[120.0, 0, W / 2], [0, 120.0, H / 2], [0, 0, 1]])
    V = np.eye(4)  # camera at (0, -5, 1) looking +y
    V[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    V[:3, 3] = -V[:3, :3] @ np.array([0.0, -5.0, 1.0])

    def empty(viewmat, K_, w, h):
        return {"rgb": torch.zeros(h, w, 3), "depth": torch.zeros(h, w, 1), "alpha": torch.zeros(h, w, 1)}

    body = BodyModel(sim.skeleton)
    t = 20
    fr = render_frame(empty, world, body, sim, t, V, K, W, H, ssaa=1)
    verts = body.vertices(sim.joints[t], sim.heading[t], sim.looks)
    for a in range(2):
        m = render_mesh(torch.from_numpy(verts[a]).float(), torch.from_numpy(body.faces), None, V, K, W, H)
        own = m["alpha"][..., 0].numpy() > 0.5
        mask = fr["instance"].numpy() == a
        assert own.sum() > 150
        assert (own & mask).sum() / (own | mask).sum() > 0.99
