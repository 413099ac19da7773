"""Kernel backends (cpu; cuda and gsplat where a GPU exists) against the float64 torch reference: images and gradients."""
from __future__ import annotations

import pytest
import torch

from realsim.assets.errors import InputError
from realsim.render import rasterization
from realsim.render import ref as R

W, H = 64, 40  # non-square, not a multiple of the tile size


def _cuda_ok(backend: str) -> str | None:
    if not torch.cuda.is_available():
        return f"backend {backend!r} needs a CUDA device (torch.cuda.is_available() is False)"
    if backend == "cuda":
        from realsim.render import _cuda
        try:
            _cuda.load()
        except Exception as e:  # noqa: BLE001 - report why it is skipped
            return f"realsim CUDA kernels unavailable: {e}"
    if backend == "gsplat":
        from realsim.render.gsplat_backend import gsplat_available
        if not gsplat_available():
            return "gsplat is not installed"
    return None


@pytest.fixture(scope="module", params=["cpu", "cuda", "gsplat"])
def backend(request):
    name = request.param
    if name == "cpu":
        from realsim.render import _cpu
        _cpu.load()  # compiled once per session; a build failure fails the tests loudly
        return name
    why = _cuda_ok(name)
    if why:
        pytest.skip(why)
    return name


def _device(backend: str) -> torch.device:
    return torch.device("cuda" if backend in ("cuda", "gsplat") else "cpu")


def make_scene(seed: int, n: int = 250, spread: float = 0.7, scale: tuple[float, float] = (-3.5, 0.5)):
    """Random Gaussians 2-4 units in front of the cameras, float64."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * spread
    means[:, 2] = 2.0 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.exp(scale[0] + scale[1] * torch.randn(n, 3, generator=g, dtype=torch.float64))
    opac = 0.05 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)
    colors = torch.rand(n, 3, generator=g, dtype=torch.float64)
    return {"means": means, "quats": quats, "scales": scales, "opacities": opac, "colors": colors}


def cameras(c: int = 2):
    vm = torch.eye(4, dtype=torch.float64).repeat(c, 1, 1)
    Ks = torch.tensor([[60.0, 0, W / 2 + 1.3], [0, 55.0, H / 2 - 0.7], [0, 0, 1]], dtype=torch.float64).repeat(c, 1, 1)
    for i in range(1, c):  # small rotations about y and shifts
        a = 0.15 * i
        vm[i, :3, :3] = torch.tensor([[torch.cos(torch.tensor(a)), 0, torch.sin(torch.tensor(a))], [0, 1, 0],
                                      [-torch.sin(torch.tensor(a)), 0, torch.cos(torch.tensor(a))]], dtype=torch.float64)
        vm[i, :3, 3] = torch.tensor([0.2 * i, -0.1 * i, 0.3 * i])
    return vm, Ks


def run(backend: str, scene: dict, vm, Ks, dtype, weights=None, **kw):
    """Render, backprop a fixed random weighting of the outputs; return images and every gradient (as float64, CPU),
    the viewmats' (camera pose) gradient included."""
    dev = _device(backend)
    params = {k: v.detach().to(dev, dtype).clone().requires_grad_(True) for k, v in scene.items()}
    vmg = vm.detach().to(dev, dtype).clone().requires_grad_(True)
    bg = kw.pop("backgrounds", None)
    if bg is not None:
        bg = bg.detach().to(dev, dtype).clone().requires_grad_(True)
    rc, ra, meta = rasterization(params["means"], params["quats"], params["scales"], params["opacities"],
                                 params["colors"], vmg, Ks.to(dev, dtype), W, H, backgrounds=bg,
                                 backend=backend, **kw)
    gen = torch.Generator().manual_seed(123)
    wc = torch.rand(rc.shape, generator=gen, dtype=torch.float64).to(dev, dtype)
    wa = torch.rand(ra.shape, generator=gen, dtype=torch.float64).to(dev, dtype)
    ((rc * wc).sum() + (ra * wa).sum()).backward()
    out = {"colors": rc, "alphas": ra}
    out.update({f"d_{k}": v.grad for k, v in params.items()})
    out["d_means2d"] = meta["means2d"].grad
    out["d_viewmats"] = vmg.grad
    if bg is not None:
        out["d_bg"] = bg.grad
    if kw.get("absgrad"):
        out["absgrad"] = meta["means2d"].absgrad
    out = {k: v.detach().double().cpu() for k, v in out.items() if v is not None}  # colours unused in "D"/"ED"
    out["radii"] = meta["radii"].cpu()
    return out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error ||a - b|| / ||b|| (0 when both vanish)."""
    nb = b.norm().item()
    return (a - b).norm().item() / nb if nb > 0 else (a - b).norm().item()


def compare(got: dict, want: dict, fwd_tol: float, grad_tol: float, radii: bool = True) -> None:
    for k in want:
        if k == "radii":
            if radii:
                assert torch.equal(got[k], want[k]), "radii differ"
            continue
        tol = fwd_tol if k in ("colors", "alphas") else grad_tol
        err = rel(got[k], want[k])
        assert err <= tol, f"{k}: relative error {err:.3g} > {tol:g}"


TOLS = {  # (forward, gradient) relative tolerances against the float64 reference
    ("cpu", torch.float64): (1e-10, 1e-9),
    ("cpu", torch.float32): (1e-5, 1e-4),
    ("cuda", torch.float32): (1e-5, 1e-4),
    ("gsplat", torch.float32): (1e-5, 1e-4),
}


def dtypes_for(backend: str):
    return [torch.float64, torch.float32] if backend == "cpu" else [torch.float32]


CASES = {
    "random": dict(seed=0),
    "several_cameras_bg": dict(seed=1, cams=3, bg=True),
    "antialiased": dict(seed=2, kw={"rasterize_mode": "antialiased"}),
    "huge_and_tiny": dict(seed=3, edit="huge_tiny"),
    "behind_and_border": dict(seed=4, edit="behind_border"),
    "low_opacity": dict(seed=5, edit="low_opacity"),
    "depth_rgb_ed": dict(seed=6, kw={"render_mode": "RGB+ED"}),
    "depth_only_d": dict(seed=8, cams=1, kw={"render_mode": "D"}),
    "depth_only_ed": dict(seed=10, cams=1, kw={"render_mode": "ED"}),
    "depth_rgb_d_bg": dict(seed=9, cams=1, bg=True, kw={"render_mode": "RGB+D"}),
    "absgrad": dict(seed=7, kw={"absgrad": True}),
}


def build_case(case: dict):
    scene = make_scene(case["seed"])
    n = scene["means"].shape[0]
    edit = case.get("edit")
    if edit == "huge_tiny":
        scene["scales"][:5] = 0.6          # huge: covers most of the image
        scene["scales"][5:60] = 1e-4       # tiny: footprint set by eps2d only
    elif edit == "behind_border":
        scene["means"][:40, 2] = -torch.linspace(0.005, 2.0, 40, dtype=torch.float64)  # behind / inside near plane
        scene["means"][40:80, 0] = 1.6 + 0.01 * torch.arange(40, dtype=torch.float64)   # straddling the right border
        scene["means"][80:120, 1] = -1.3 - 0.01 * torch.arange(40, dtype=torch.float64)  # straddling the top border
        scene["scales"][40:120] *= 3
    elif edit == "low_opacity":
        scene["opacities"][: n // 2] = torch.linspace(1e-4, 0.02, n // 2, dtype=torch.float64)
    vm, Ks = cameras(case.get("cams", 2))
    kw = dict(case.get("kw", {}))
    if case.get("bg"):
        kw["backgrounds"] = torch.rand(vm.shape[0], 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    return scene, vm, Ks, kw


@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_reference(backend, case):
    scene, vm, Ks, kw = build_case(CASES[case])
    want = run("torch", scene, vm, Ks, torch.float64, **dict(kw))
    assert want["alphas"].max() > 0.5, "scene must actually cover the image"
    for dt in dtypes_for(backend):
        got = run(backend, scene, vm, Ks, dt, **dict(kw))
        fwd_tol, grad_tol = TOLS[(backend, dt)]
        compare(got, want, fwd_tol, grad_tol, radii=backend != "gsplat" and dt == torch.float64)


def test_all_culled(backend):
    scene = make_scene(11, n=30)
    scene["means"][:, 2] = -1.0  # everything behind the camera
    vm, Ks = cameras(1)
    bg = torch.tensor([[0.2, 0.4, 0.6]], dtype=torch.float64)
    got = run(backend, scene, vm, Ks, dtypes_for(backend)[0], backgrounds=bg)
    assert torch.all(got["radii"] == 0)
    assert torch.allclose(got["colors"], bg.reshape(1, 1, 1, 3).expand(1, H, W, 3))
    assert torch.all(got["alphas"] == 0)
    for k in ("d_means", "d_quats", "d_scales", "d_opacities", "d_colors", "d_viewmats"):
        assert torch.all(got[k] == 0), k


def test_tile_size_does_not_change_the_image(backend):
    if backend == "gsplat":
        pytest.skip("gsplat tiles its own way; checked against the reference above")
    scene = make_scene(12, scale=(-2.5, 0.6))
    vm, Ks = cameras(2)
    outs = [run(backend, scene, vm, Ks, torch.float64 if backend == "cpu" else torch.float32, tile_size=t)
            for t in (8, 16, 32)]
    for o in outs[1:]:
        compare(o, outs[0], 1e-12 if backend == "cpu" else 1e-6, 1e-10 if backend == "cpu" else 1e-5)


def test_depth_order_with_non_contiguous_inputs(backend):
    """OpenSplat-style bug guard: blend order must follow depth even when inputs are strided views."""
    dev = _device(backend)
    dt = torch.float64 if backend == "cpu" else torch.float32
    n = 6
    depths = torch.tensor([3.0, 1.5, 4.0, 2.0, 2.5, 5.0], dtype=dt)
    big = torch.zeros(n, 7, dtype=dt)  # means live in columns 0, 2, 4 of a wider buffer -> stride 2 view
    big[:, 4] = depths
    big[:, 0] = 0.01 * torch.arange(n, dtype=dt)
    means = big[:, 0:5:2]
    assert not means.is_contiguous()
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=dt).expand(n, 4)          # stride-0 view
    scales = (0.5 * depths[:, None]).expand(n, 3).t().contiguous().t()     # transposed layout
    assert not scales.is_contiguous()
    opac = torch.full((2 * n,), 0.6, dtype=dt)[::2]                        # strided
    palette = torch.eye(3, dtype=dt)[torch.tensor([0, 1, 2, 0, 1, 2])]
    colors = torch.cat([palette, palette], 1)[:, :3]                       # non-contiguous slice
    vm, Ks = cameras(1)
    args = [t.to(dev) for t in (means, quats, scales, opac, colors)] + [vm.to(dev, dt), Ks.to(dev, dt)]
    rc, ra, meta = rasterization(*args, W, H, backend=backend)
    # Analytic front-to-back composite at the image centre pixel, nearest first.
    order = torch.argsort(depths)
    mid = (int(Ks[0, 1, 2]), int(Ks[0, 0, 2]))
    rc_ref, _, _, _ = R.reference_rasterization(*[a.cpu().contiguous() for a in args[:5]], vm.to(dt), Ks.to(dt), W, H)
    assert torch.allclose(rc[0, mid[0], mid[1]].cpu(), rc_ref[0, mid[0], mid[1]], atol=1e-5)
    T, col = 1.0, torch.zeros(3, dtype=torch.float64)
    m2 = meta["means2d"][0].detach().cpu().double()
    con = meta["conics"][0].detach().cpu().double()
    for i in order.tolist():
        dx, dy = m2[i, 0] - (mid[1] + 0.5), m2[i, 1] - (mid[0] + 0.5)
        sig = 0.5 * (con[i, 0] * dx * dx + con[i, 2] * dy * dy) + con[i, 1] * dx * dy
        a = min(0.999, 0.6 * float(torch.exp(-sig)))
        col += T * a * palette[i].double()
        T *= 1 - a
    assert torch.allclose(rc[0, mid[0], mid[1]].cpu().double(), col, atol=1e-5), (rc[0, mid[0], mid[1]], col)
    if backend != "gsplat":  # every tile's list is sorted by depth
        flat, offs = meta["flatten_ids"].cpu().long(), meta["isect_offsets"].cpu().flatten().long()
        ends = torch.cat([offs[1:], torch.tensor([flat.numel()])])
        d = depths.double()
        for s, e in zip(offs.tolist(), ends.tolist()):
            seg = d[flat[s:e] % n]
            assert torch.all(seg[1:] >= seg[:-1])


def test_gradcheck_cpu_kernels():
    """Analytic CPU backward against finite differences (float64) on a tiny scene, both raster modes."""
    from realsim.render import _cpu
    _cpu.load()
    scene = make_scene(21, n=4, spread=0.3, scale=(-1.8, 0.2))
    vm, Ks = cameras(2)
    w, h = 12, 10
    Ks = Ks.clone()
    Ks[:, 0, 2], Ks[:, 1, 2] = w / 2, h / 2
    Ks[:, 0, 0] = Ks[:, 1, 1] = 12.0
    for mode in ("classic", "antialiased"):
        def f(means, quats, scales, opac, colors, viewmats, mode=mode):
            rc, ra, _ = rasterization(means, quats, scales, opac, colors, viewmats, Ks, w, h, backend="cpu",
                                      rasterize_mode=mode, render_mode="RGB+D")
            return rc, ra
        inputs = tuple(v.clone().requires_grad_(True) for v in [*scene.values(), vm])
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradcheck_torch_reference():
    scene = make_scene(22, n=3, spread=0.3, scale=(-1.8, 0.2))
    vm, Ks = cameras(1)
    w, h = 10, 8
    Ks = Ks.clone()
    Ks[:, 0, 2], Ks[:, 1, 2] = w / 2, h / 2
    Ks[:, 0, 0] = Ks[:, 1, 1] = 10.0

    def f(means, quats, scales, opac, colors):
        rc, ra, _ = rasterization(means, quats, scales, opac, colors, vm, Ks, w, h, backend="torch",
                                  rasterize_mode="antialiased")
        return rc, ra
    inputs = tuple(v.clone().requires_grad_(True) for v in scene.values())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_sh_colors_through_cpu():
    from realsim.render import spherical_harmonics
    scene = make_scene(31, n=120)
    g = torch.Generator().manual_seed(5)
    sh = 0.3 * torch.randn(120, 16, 3, generator=g, dtype=torch.float64)
    vm, Ks = cameras(2)
    res = {}
    for be in ("torch", "cpu"):
        p = {k: v.clone().requires_grad_(True) for k, v in scene.items() if k != "colors"}
        c = sh.clone().requires_grad_(True)
        rc, ra, _ = rasterization(p["means"], p["quats"], p["scales"], p["opacities"], c, vm, Ks, W, H,
                                  sh_degree=3, backend=be)
        rc.square().sum().backward()
        res[be] = (rc.detach(), c.grad, p["means"].grad)
    for a, b in zip(res["cpu"], res["torch"]):
        assert rel(a, b) < 1e-10
    # degree 0 is the constant C0 * coefficient
    d = torch.randn(7, 3, dtype=torch.float64)
    co = torch.randn(7, 1, 3, dtype=torch.float64)
    assert torch.allclose(spherical_harmonics(0, d, co), 0.28209479177387814 * co[:, 0])


def test_bad_inputs_raise_input_error():
    s = make_scene(0, n=5)
    vm, Ks = cameras(1)
    with pytest.raises(InputError):
        rasterization(s["means"], s["quats"], s["scales"], s["opacities"], s["colors"], vm, Ks, W, H, backend="vulkan")
    with pytest.raises(InputError):
        rasterization(s["means"][:, :2], s["quats"], s["scales"], s["opacities"], s["colors"], vm, Ks, W, H)
    with pytest.raises(InputError):
        rasterization(s["means"], s["quats"], s["scales"], s["opacities"], s["colors"], vm, Ks, W, H, render_mode="X")
    with pytest.raises(InputError):
        rasterization(s["means"], s["quats"], s["scales"], s["opacities"], s["colors"], vm, Ks, W, H, sh_degree=2)


@pytest.mark.parametrize("be", ["torch", "cpu"])
def test_empty_scene_is_differentiable_and_dtypes_follow_means(be):
    z = torch.zeros(0, 3, requires_grad=True)
    rc, ra, meta = rasterization(z, torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3),
                                 torch.eye(4)[None], torch.eye(3)[None], 8, 6, backend=be,
                                 backgrounds=torch.ones(1, 3))
    rc.sum().backward()  # stays in the graph even with nothing to draw
    assert rc.shape == (1, 6, 8, 3) and torch.all(rc == 1) and torch.all(ra == 0)
    assert meta["radii"].shape == (1, 0, 2)
    s = make_scene(3, n=20)
    rc, _, _ = rasterization(s["means"], s["quats"].float(), s["scales"].float(), s["opacities"].float(),
                             s["colors"].float(), torch.eye(4)[None], torch.eye(3)[None] * 30, 8, 6, backend=be)
    assert rc.dtype == torch.float64
    if be == "cpu":
        with pytest.raises(InputError):
            rasterization(s["means"].half(), s["quats"], s["scales"], s["opacities"], s["colors"],
                          torch.eye(4)[None], torch.eye(3)[None], 8, 6, backend="cpu")


def test_kernel_ops_reject_bad_shapes_and_planes():
    """The compiled ops check every layout of ops.h (one error naming the tensor) and the near plane, before a kernel
    could read out of bounds; rasterization() turns a bad near plane into InputError for every backend."""
    from realsim.render import _cpu
    ops = _cpu.load()
    s = make_scene(40, n=30)
    vm, Ks = cameras(2)
    args = [s["means"], s["quats"], s["scales"], s["opacities"], vm, Ks]
    radii, m2, depths, conics, comp = ops.project_fwd(*args, W, H, 0.3, 0.01, 1e10, False)
    bad = {"quats": s["quats"][:, :3].contiguous(), "scales": s["scales"][:-1].contiguous(),
           "opacities": s["opacities"][:, None].contiguous(), "Ks": Ks[:1].contiguous()}
    for name, t in bad.items():
        a = list(args)
        a[["means", "quats", "scales", "opacities", "viewmats", "Ks"].index(name)] = t
        with pytest.raises(RuntimeError, match=name):
            ops.project_fwd(*a, W, H, 0.3, 0.01, 1e10, False)
    for near, far in ((0.0, 10.0), (-1.0, 10.0), (1.0, 0.5)):
        with pytest.raises(RuntimeError, match="near_plane|far_plane"):
            ops.project_fwd(*args, W, H, 0.3, near, far, False)
        with pytest.raises(InputError, match="near_plane"):
            rasterization(s["means"], s["quats"], s["scales"], s["opacities"], s["colors"], vm, Ks, W, H,
                          near_plane=near, far_plane=far, backend="torch")
    zeros = [torch.zeros_like(t) for t in (m2, depths, conics, comp)]
    with pytest.raises(RuntimeError, match="v_conics"):
        ops.project_bwd(*args[:3], vm, Ks, W, H, 0.3, False, radii, conics, comp, zeros[0], zeros[1],
                        zeros[2][:, :, :2].contiguous(), zeros[3], False)
    _, _, flat, offs = ops.isect_tiles(m2, radii, depths, 16, -(-W // 16), -(-H // 16))
    with pytest.raises(RuntimeError, match="depths"):
        ops.isect_tiles(m2, radii, depths[:, :-1].contiguous(), 16, -(-W // 16), -(-H // 16))
    colors = s["colors"][None].expand(2, -1, -1).contiguous()
    op = s["opacities"][None].expand(2, -1).contiguous()
    with pytest.raises(RuntimeError, match="isect_offsets"):  # offsets of another tile size
        ops.rasterize_fwd(m2, conics, colors, op, None, radii, W, H, 8, offs, flat)
    with pytest.raises(RuntimeError, match="backgrounds"):
        ops.rasterize_fwd(m2, conics, colors, op, torch.zeros(2, 4, dtype=torch.float64), radii, W, H, 16, offs, flat)
    rc, ra, last = ops.rasterize_fwd(m2, conics, colors, op, None, radii, W, H, 16, offs, flat)
    with pytest.raises(RuntimeError, match="v_render_colors"):
        ops.rasterize_bwd(m2, conics, colors, op, None, radii, W, H, 16, offs, flat, ra, last,
                          torch.zeros(2, H, W, 2, dtype=torch.float64), torch.zeros_like(ra), False)


def test_cpu_gradients_are_the_same_bits_on_one_thread_and_two():
    """Large enough (> 65536 intersections) that the backward sums its rows on both threads: every sum keeps the
    serial order, so the gradients are identical, not just close."""
    scene = make_scene(7, n=9000, spread=1.2, scale=(-2.5, 0.4))
    vm, Ks = cameras(2)
    Ks = Ks.clone()
    Ks[:, :2] *= 3.0  # a 3x finer image: 192x144 pixels per camera
    before = torch.get_num_threads()
    outs = []
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            params = {k: v.float().clone().requires_grad_(True) for k, v in scene.items()}
            rc, ra, meta = rasterization(params["means"], params["quats"], params["scales"], params["opacities"],
                                         params["colors"], vm.float(), Ks.float(), 3 * W, 3 * H, backend="cpu",
                                         absgrad=True)
            ((rc * torch.linspace(0, 1, rc.numel()).reshape(rc.shape)).sum() + ra.sum()).backward()
            outs.append([meta["means2d"].grad, meta["means2d"].absgrad] + [params[k].grad for k in sorted(params)])
            n_isects = int(meta["flatten_ids"].numel())
    finally:
        torch.set_num_threads(before)
    assert n_isects > 65536
    for a, b in zip(*outs):
        assert torch.equal(a, b)
