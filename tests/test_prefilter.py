"""Scaffold-GS anchor prefilter: torch reference vs an independent exact-distance oracle (Dykstra projection onto the
frustum), the C++ CPU kernel vs the reference, and edge cases (behind the camera, borders, corners, near plane, pad)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realsim.assets.errors import InputError, RealsimError
from realsim.render import anchor_prefilter
from realsim.render.prefilter import anchor_prefilter_torch, frustum_planes

W, H = 128, 96
K = torch.tensor([[100.0, 0.0, 60.0], [0.0, 90.0, 50.0], [0.0, 0.0, 1.0]])
NEAR = 0.1


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """OpenCV world-to-camera [4,4] of a camera at eye looking at target (x right, y down, z forward)."""
    eye, target, up = (torch.tensor(v, dtype=torch.float64) for v in (eye, target, up))
    z = torch.nn.functional.normalize(target - eye, dim=0)
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=0)
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z])
    vm = torch.eye(4, dtype=torch.float64)
    vm[:3, :3], vm[:3, 3] = R, -R @ eye
    return vm


def dykstra_distance(p: np.ndarray, n: np.ndarray, o: np.ndarray, iters: int = 3000) -> np.ndarray:
    """Distances [M] from camera-space points p [M,3] to the convex set {n_i . x + o_i >= 0}: Dykstra's alternating
    projections converge to the exact nearest point (an oracle independent of the face/edge enumeration)."""
    x = p.copy()
    inc = np.zeros((len(n),) + p.shape)
    for _ in range(iters):
        for i in range(len(n)):
            y = x + inc[i]
            s = y @ n[i] + o[i]
            x_new = y - np.minimum(s, 0.0)[:, None] * n[i]
            inc[i] = y - x_new
            x = x_new
    return np.linalg.norm(p - x, axis=1)


def random_anchors(m: int, seed: int, spread: float = 6.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(m, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread
    a[:, 2] += spread * 0.3  # more in front of the camera than behind
    r = torch.rand(m, generator=g, dtype=dtype) ** 2 * 2.0
    return a, r


def ambiguous(anchors, radii, vm, Kt, pad, rel=1e-4, abs_=1e-5):
    """Anchors whose float64 answer flips when the radius moves by a hair: float32 kernels may differ there."""
    a64, r64 = anchors.double(), radii.double()
    lo = anchor_prefilter_torch(a64, (r64 * (1 - rel) - abs_).clamp(min=0), vm.double(), Kt.double(), W, H, NEAR, pad)
    hi = anchor_prefilter_torch(a64, r64 * (1 + rel) + abs_, vm.double(), Kt.double(), W, H, NEAR, pad)
    return lo != hi


@pytest.fixture(scope="module")
def cpu_ok():
    """Build the C++ kernel once for the module (skips, with the reason, if no compiler works here)."""
    a, r = random_anchors(4, 0)
    try:
        anchor_prefilter(a.float(), r.float(), torch.eye(4), K, W, H, backend="cpu")
    except RealsimError as e:
        pytest.skip(f"C++ prefilter unavailable: {e}")
    return True


@pytest.mark.parametrize("pad", [0.0, 7.5])
def test_reference_matches_exact_distance_oracle(pad):
    anchors, radii = random_anchors(600, seed=1, spread=5.0)
    vm = torch.eye(4, dtype=torch.float64)
    n, o = frustum_planes(K.double(), W, H, NEAR, pad)
    d = dykstra_distance(anchors.numpy(), n.numpy(), o.numpy())
    truth = d <= radii.numpy()
    got = anchor_prefilter_torch(anchors, radii, vm, K.double(), W, H, NEAR, pad).numpy()
    clear = np.abs(d - radii.numpy()) > 1e-6
    assert clear.sum() > 590
    assert (got[clear] == truth[clear]).all(), np.nonzero(got[clear] != truth[clear])
    assert 0.1 < truth.mean() < 0.9  # a mix of kept and culled anchors


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_exact_test_is_tighter_than_the_plane_test_near_edges(backend, cpu_ok):
    """Outside two side planes near a frustum edge: the plane test keeps the sphere, the exact one does not."""
    n, o = frustum_planes(K.double(), W, H, NEAR, 0.0)
    right, bottom = n[2], n[4]
    # a point on the lateral edge ray (right & bottom planes meet) at depth 5, pushed out along both normals
    corner_dir = torch.tensor([(W - 60.0) / 100.0, (H - 50.0) / 90.0, 1.0], dtype=torch.float64)
    on_edge = corner_dir * 5.0
    p = on_edge - 0.1 * right - 0.1 * bottom
    d = float(dykstra_distance(p[None].numpy(), n.numpy(), o.numpy())[0])
    plane_dists = (n @ p + o)
    r = 0.95 * d
    assert (plane_dists >= -r).all(), "the conservative plane test would keep this anchor"
    got = anchor_prefilter(p[None].repeat(2, 1), torch.tensor([r, 1.05 * d], dtype=torch.float64),
                           torch.eye(4, dtype=torch.float64), K.double(), W, H, NEAR, 0.0, backend=backend)
    assert got.tolist() == [False, True]


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_edge_cases(backend, cpu_ok):
    eye = torch.eye(4)
    fx, cx = 100.0, 60.0
    x_right = (W - cx) / fx  # right border slope x/z
    nr = torch.tensor([-1.0, 0.0, x_right]) / math.sqrt(1 + x_right ** 2)  # inward normal of the right plane

    def keep(points, radii, vm=eye, pad=0.0, near=NEAR):
        pts = torch.tensor(points, dtype=torch.float32).reshape(-1, 3)
        return anchor_prefilter(pts, torch.tensor(radii, dtype=torch.float32), vm, K, W, H, near_plane=near, pad=pad,
                                backend=backend).tolist()

    # behind the camera: 1.1 from the near plane at z = 0.1 (nearest point is the near face centre region)
    assert keep([[0.0, 0.0, -1.0]] * 2, [1.0, 1.2]) == [False, True]
    # a sphere around the camera centre reaches the near face
    assert keep([[0.0, 0.0, 0.0]] * 2, [0.05, 0.2]) == [False, True]
    # just outside the right border at depth 5, 0.1 from the side plane
    q = torch.tensor([x_right * 5.0, 0.0, 5.0]) - 0.1 * nr
    assert keep([q.tolist()] * 2, [0.099, 0.101]) == [False, True]
    # on the border with radius 0 is inside; a wider pad admits the outside point with radius 0
    assert keep([[x_right * 5.0 - 1e-4, 0.0, 5.0]], [0.0]) == [True]
    assert keep([q.tolist()], [0.0]) == [False]
    assert keep([q.tolist()], [0.0], pad=5.0) == [True]
    # near plane
    assert keep([[0.0, 0.0, 0.05]] * 2, [0.04, 0.06], near=NEAR) == [False, True]
    # huge sphere far off to the side still crosses the frustum; far in front with tiny radius inside
    assert keep([[100.0, 0.0, 10.0], [0.0, 0.0, 1e4]], [100.0, 1e-3]) == [True, True]
    # non-finite centres never pass; an infinite radius always does
    assert keep([[float("nan"), 0.0, 5.0], [0.0, float("inf"), 5.0]], [1.0, 1.0]) == [False, False]
    assert keep([[0.0, 0.0, -50.0]], [float("inf")]) == [True]
    # camera moved and turned: world anchors go through the viewmat
    vm = look_at((10.0, 0.0, 1.0), (10.0, 5.0, 1.0)).float()
    assert keep([[10.0, 5.0, 1.0], [10.0, -5.0, 1.0], [10.0, -5.0, 1.0]], [0.1, 0.1, 6.0], vm=vm) == [True, False, True]
    # empty input
    assert anchor_prefilter(torch.zeros(0, 3), torch.zeros(0), eye, K, W, H, backend=backend).shape == (0,)


def test_cpu_kernel_matches_reference_on_random_scenes(cpu_ok):
    g = torch.Generator().manual_seed(3)
    for i, (eye, target, pad) in enumerate([((0, 0, 0), (0, 0, 1), 0.0), ((3, -2, 1.5), (0, 0, 0), 4.0),
                                            ((-5, 5, 2), (1, 0, 0.5), 0.0), ((0.5, 0.2, 10), (0, 0, 0), 12.0)]):
        vm = look_at(eye, target, up=(0.0, 1.0, 0.0) if eye[0] == eye[1] == 0 else (0.0, 0.0, 1.0)).float()
        anchors, radii = random_anchors(8000, seed=10 + i, spread=8.0, dtype=torch.float32)
        Kc = K.clone()
        Kc[0, 2] += float(torch.randn((), generator=g)) * 10  # off-centre principal point
        ref = anchor_prefilter(anchors, radii, vm, Kc, W, H, NEAR, pad, backend="torch")
        cpu = anchor_prefilter(anchors, radii, vm, Kc, W, H, NEAR, pad, backend="cpu")
        auto = anchor_prefilter(anchors, radii, vm, Kc, W, H, NEAR, pad)
        assert torch.equal(cpu, auto)
        amb = ambiguous(anchors, radii, vm, Kc, pad)
        assert amb.sum() < 10
        assert torch.equal(cpu[~amb], ref[~amb]), (cpu != ref).nonzero()[:5]
        assert 0.02 < ref.float().mean() < 0.98


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_zero_radius_is_the_projection_test_and_pad_only_adds(backend, cpu_ok):
    anchors, _ = random_anchors(5000, seed=5, spread=4.0, dtype=torch.float32)
    vm = look_at((0.3, -0.2, 0.1), (1.0, 2.0, 0.5)).float()
    p = anchors @ vm[:3, :3].T + vm[:3, 3]
    z = p[:, 2]
    u = K[0, 0] * p[:, 0] / z + K[0, 2]
    v = K[1, 1] * p[:, 1] / z + K[1, 2]
    for pad in (0.0, 6.0):
        expect = (z >= NEAR) & (u >= -pad) & (u <= W + pad) & (v >= -pad) & (v <= H + pad)
        got = anchor_prefilter(anchors, torch.zeros(5000), vm, K, W, H, NEAR, pad, backend=backend)
        assert torch.equal(got, expect)
    radii = torch.rand(5000, generator=torch.Generator().manual_seed(9)) * 0.5
    base = anchor_prefilter(anchors, radii, vm, K, W, H, NEAR, 0.0, backend=backend)
    padded = anchor_prefilter(anchors, radii, vm, K, W, H, NEAR, 20.0, backend=backend)
    bigger = anchor_prefilter(anchors, radii * 2, vm, K, W, H, NEAR, 0.0, backend=backend)
    assert (padded | ~base).all() and (bigger | ~base).all()
    assert padded.sum() > base.sum() and bigger.sum() > base.sum()


def test_layouts_dtypes_and_scalar_radius(cpu_ok):
    anchors, radii = random_anchors(3000, seed=7, dtype=torch.float64)
    vm = look_at((1.0, 1.0, 0.5), (0.0, 3.0, 0.0))
    base = anchor_prefilter(anchors.float().contiguous(), radii.float(), vm.float(), K, W, H, backend="cpu")
    wide = torch.zeros(3000, 5, dtype=torch.float64)
    wide[:, 1:4] = anchors
    strided = wide[:, 1:4]  # non-contiguous view
    assert not strided.is_contiguous()
    got = anchor_prefilter(strided, radii, vm, K.double(), W, H, backend="cpu")  # float64, strided
    amb = ambiguous(anchors, radii, vm, K, 0.0)
    assert torch.equal(got[~amb], base[~amb])
    scalar = anchor_prefilter(anchors.float(), 0.25, vm.float(), K, W, H, backend="cpu")
    full = anchor_prefilter(anchors.float(), torch.full((3000,), 0.25), vm.float(), K, W, H, backend="cpu")
    assert torch.equal(scalar, full)
    # gradients never flow through a mask, and inputs that require grad are fine
    req = anchors.float().clone().requires_grad_(True)
    assert anchor_prefilter(req, radii.float(), vm.float(), K, W, H, backend="cpu").dtype == torch.bool


def test_bad_input_raises_input_error():
    a, r = torch.zeros(4, 3), torch.ones(4)
    eye = torch.eye(4)
    with pytest.raises(InputError, match="backend"):
        anchor_prefilter(a, r, eye, K, W, H, backend="opengl")
    with pytest.raises(InputError, match=r"\[M,3\]"):
        anchor_prefilter(torch.zeros(4, 2), r, eye, K, W, H)
    with pytest.raises(InputError, match="radii"):
        anchor_prefilter(a, torch.ones(3), eye, K, W, H)
    with pytest.raises(InputError, match=">= 0"):
        anchor_prefilter(a, -r, eye, K, W, H)
    with pytest.raises(InputError, match="viewmat"):
        anchor_prefilter(a, r, torch.eye(3), K, W, H)
    with pytest.raises(InputError, match="positive"):
        anchor_prefilter(a, r, eye, K, 0, H)
    with pytest.raises(InputError, match="pad"):
        anchor_prefilter(a, r, eye, K, W, H, pad=-60.0)
    if not torch.cuda.is_available():
        with pytest.raises(RealsimError, match="CUDA"):
            anchor_prefilter(a, r, eye, K, W, H, backend="cuda")
