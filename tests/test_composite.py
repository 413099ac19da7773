"""Depth compositing: nearest layer wins, alpha-aware blending, unprojection, contact shadow, and the depth order of an agent
standing behind scene geometry in the synthetic street."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.render.composite import composite_layers, contact_shadow, unproject_depth

H, W = 8, 10


def _layers(scene_d, mesh_d, scene_a=1.0, mesh_a=1.0):
    s_rgb = torch.full((H, W, 3), 0.2)
    m_rgb = torch.full((H, W, 3), 0.9)
    return (s_rgb, torch.full((H, W, 1), scene_d), torch.full((H, W, 1), scene_a), m_rgb, torch.full((H, W, 1), mesh_d),
            torch.full((H, W, 1), mesh_a))


def test_nearest_layer_wins():
    out = composite_layers(*_layers(5.0, 3.0))
    assert torch.allclose(out["rgb"], torch.tensor(0.9)) and torch.allclose(out["depth"], torch.tensor(3.0))
    out = composite_layers(*_layers(3.0, 5.0))
    assert torch.allclose(out["rgb"], torch.tensor(0.2)) and torch.allclose(out["depth"], torch.tensor(3.0))
    assert out["mesh_weight"].max() < 1e-6


def test_alpha_aware_blending():
    bg = (0.0, 0.0, 1.0)
    # transparent scene pixel (sky): the mesh shows even though the scene's depth is 0
    s_rgb, s_d, s_a, m_rgb, m_d, m_a = _layers(0.0, 4.0, scene_a=0.0)
    s_rgb[:] = torch.tensor(bg)
    out = composite_layers(s_rgb, s_d, s_a, m_rgb, m_d, m_a, background=bg)
    assert torch.allclose(out["rgb"], torch.tensor(0.9))
    # half-transparent scene in front of the mesh: premultiplied scene + (1 - a) * mesh
    s_rgb, s_d, s_a, m_rgb, m_d, m_a = _layers(2.0, 4.0, scene_a=0.5)
    s_rgb[:] = 0.5 * 0.2 + 0.5 * torch.tensor(bg)  # rendered over the background
    out = composite_layers(s_rgb, s_d, s_a, m_rgb, m_d, m_a, background=bg)
    expect = 0.5 * 0.2 + 0.5 * 0.9
    assert torch.allclose(out["rgb"], torch.tensor(expect), atol=1e-4)
    # anti-aliased mesh edge (alpha 0.25) in front of an opaque scene
    out = composite_layers(*_layers(6.0, 2.0, mesh_a=0.25))
    assert torch.allclose(out["rgb"], torch.tensor(0.25 * 0.9 + 0.75 * 0.2), atol=1e-5)
    assert torch.allclose(out["depth"], torch.tensor(6.0))  # mostly scene: the scene's depth stays


def test_unproject_roundtrip():
    rng = np.random.default_rng(0)
    K = np.array([[50.0, 0, 5], [0, 50.0, 4], [0, 0, 1]])
    V = np.eye(4)
    V[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0] * np.sign(np.linalg.det(np.linalg.qr(rng.normal(size=(3, 3)))[0]))
    V[:3, :3] = V[:3, :3] if np.linalg.det(V[:3, :3]) > 0 else -V[:3, :3]
    V[:3, 3] = [0.3, -0.2, 1.0]
    d = torch.from_numpy(rng.uniform(1, 5, (H, W, 1))).float()
    P = unproject_depth(d, V, K).numpy().astype(np.float64)
    pc = P @ V[:3, :3].T + V[:3, 3]
    np.testing.assert_allclose(pc[..., 2], d[..., 0].numpy(), rtol=1e-5)
    uv = pc @ K.T
    np.testing.assert_allclose(uv[..., 0] / uv[..., 2], np.arange(W)[None] + 0.5 + 0 * uv[..., 0], atol=1e-3)


def test_contact_shadow_falls_on_ground_only():
    xs = torch.linspace(-2, 2, 9)  # includes x = 0
    P = torch.zeros(H, 9, 3)
    P[..., 0] = xs[None]
    P[4:, :, 2] = 1.5  # lower half of the "image" is a wall point 1.5 m above the ground
    f = contact_shadow(P, torch.zeros(H, 9), np.array([[0.0, 0.0, 0.0]]), np.array([0.5]))
    centre = int(torch.argmin(xs.abs()))
    assert f[0, centre, 0] == pytest.approx(1 - 0.55, abs=1e-5)  # full strength under the agent
    assert f[0, 0, 0] > 0.99  # 2 m away: no shadow
    assert f[5, centre, 0] > 0.99  # on the wall above the ground: no shadow


@pytest.fixture(scope="module")
def street():
    from realsim.sim.capture import build_street

    return build_street(0)


def test_agent_behind_kiosk_is_occluded_and_in_front_is_not(street):
    """A body standing behind the kiosk (scene geometry) is hidden where the kiosk is, and its depth never wins there."""
    from realsim.render.mesh import render_mesh
    from realsim.sim.body import BodyModel, random_looks
    from realsim.render.paths import look_at
    from realsim.sim.capture import render_view
    from realsim.sim.gait import ProceduralWalker

    Wd, Hd = 160, 120
    K = np.array([[130.0, 0, 80], [0, 130.0, 60], [0, 0, 1]])
    V = look_at([-1.2, 12.0, 1.6], [-1.2, 19.0, 1.2])  # looking at the kiosk (centre (-1.2, 19), 2.2 m wide)
    scene = render_view(street, V, K, Wd, Hd, ssaa=1)
    walker = ProceduralWalker(2, lambda xy: np.zeros(xy.shape[:-1]))
    walker.reset(np.array([[-1.2, 21.5], [-1.2, 16.0]]), np.zeros(2))  # behind the kiosk / in front of it
    pose = walker.step(np.repeat(walker.xy[:, None], 5, 1))
    body = BodyModel(walker.skeleton)
    looks = random_looks(2, np.random.default_rng(0))
    for a, expect_visible in ((0, False), (1, True)):
        verts = body.vertices(pose.joints[a:a + 1], pose.heading[a:a + 1], looks[a:a + 1])[0]
        m = render_mesh(torch.from_numpy(verts).float(), torch.from_numpy(body.faces), None, V, K, Wd, Hd)
        out = composite_layers(torch.from_numpy(scene["rgb"]), torch.from_numpy(scene["depth"]), torch.ones(Hd, Wd, 1),
                               m["rgb"], m["depth"], m["alpha"])
        covered = m["alpha"][..., 0] > 0
        assert covered.sum() > 50  # the body projects into the image either way
        shown = out["mesh_weight"][..., 0] > 0.5
        if expect_visible:
            assert shown[covered].float().mean() > 0.95
            np.testing.assert_allclose(out["depth"][shown].numpy(), m["depth"][shown].numpy())
        else:
            # the kiosk (depth ~5.9 m) hides the body (depth ~9.5 m) wherever both project
            kiosk = covered & (torch.from_numpy(scene["depth"][..., 0]) < m["depth"][..., 0] - 0.5)
            assert kiosk.sum() > 30
            assert not shown[kiosk].any()
            np.testing.assert_allclose(out["depth"][kiosk].numpy(), scene["depth"][kiosk.numpy()], rtol=1e-6)
