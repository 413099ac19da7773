"""Physical laws in rendered video: balls simulated by MuJoCo in a reconstructed scene, recovered from the rendered output.

Scenarios (each at slow 0.5-2 m/s and fast 8-20 m/s speeds): uniform motion of a frictionless ball sliding on the scene's
ground, an elastic head-on collision of two balls of different mass, a parabolic throw. Each is rendered by the normal sim
outputs (Gaussian scene + props, static camera = the capture's middle camera), then every ball's 3D centre per frame is
recovered FROM THE FILES WRITTEN (instance mask masks/NNNNNN.png + 16-bit depth depth/NNNNNN.png + cameras.json: the mean
unprojected surface point of the mask, pushed back 2/3 of the radius along the viewing ray), never from the simulator state.
Velocity by central differences is compared with the analytic law (v0; v0 + g t; 1-D elastic collision), as the mean relative
error |v - v_law| / |v_law| over the frames where the ball is fully seen; the collision also reports momentum and kinetic
energy before vs after from the recovered velocities.

    python bench/physics.py --scene /tmp/h5demo/scene      # a demo scene: realsim demo -o /tmp/h5demo ... (see README)
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, write_result

G = 9.81
R = 0.11  # ball radius (m)
N_FRAMES = 24
SLOW, FAST = (0.5, 1.0, 2.0), (8.0, 14.0, 20.0)
DIT = {"in_distribution": 0.02, "out_of_distribution": 0.3}  # velocity error of DiT video generators (issue 15)


def _setup(scene_dir: str, D: float = 5.0):
    from realsim.recon import load_scene
    from realsim.sim.camera import metric_frames
    from realsim.sim.outputs import gaussian_layer
    from realsim.sim.world import world_from_scene

    scene = load_scene(scene_dir)
    world = world_from_scene(scene)
    mf = metric_frames(scene.cameras.frames, world.scale)
    cam = mf[len(mf) // 2]
    V, K = np.asarray(cam.viewmat, np.float64), np.asarray(cam.K, np.float64)
    W, H = cam.width // 2 * 2, cam.height // 2 * 2
    Rw = V[:3, :3].T
    C = -Rw @ V[:3, 3]
    fwd = Rw[:, 2].copy()
    fwd[2] = 0
    fwd /= np.linalg.norm(fwd)
    right = np.array([fwd[1], -fwd[0], 0.0])  # +x of the image, level
    if right @ Rw[:, 0] < 0:
        right = -right
    P0 = C + D * fwd
    P0[2] = float(world.height(P0[None, :2])[0])
    half = 0.75 * (W / 2) / K[0, 0] * D  # lateral half-width the ball may use, keeping it off the image border
    # the scene's ground is a fitted plane, level only to its fit (the demo street's: 0.11 deg): a frictionless ball on it
    # accelerates by a = g (n_z n - z) (gravity plus the normal force), which the laws below include; balls start in-plane
    n = np.asarray(world.plane[:3], np.float64)
    n /= np.linalg.norm(n)
    slope = G * (n[2] * n - np.array([0.0, 0.0, 1.0]))
    right = right - (right @ n) * n
    right /= np.linalg.norm(right)
    layer = gaussian_layer(scene, world.scale)
    memo: dict = {}

    def static_layer(viewmat, K_, w, h):  # the camera never moves: render the Gaussian scene once per size
        key = (np.asarray(viewmat).tobytes(), np.asarray(K_).tobytes(), w, h)
        if key not in memo:
            memo[key] = layer(viewmat, K_, w, h)
        return {k: v.clone() for k, v in memo[key].items()}

    return scene, world, static_layer, V, K, W, H, P0, right, half, slope


def _run(ctx, props, duration: float, out: Path):
    """Simulate + render the props; recover their centres [T,P,3] (nan where not fully seen) from the written files."""
    from PIL import Image

    from realsim.assets.cameras import load_cameras
    from realsim.render.paths import CameraPath
    from realsim.sim.loop import run_sim
    from realsim.sim.outputs import write_outputs
    from realsim.sim.physics import simulate_props
    from realsim.sim.scenario import Scenario

    scene, world, layer, V, K, W, H = ctx[:7]
    fps = max(2.0, round(N_FRAMES / duration))
    T = int(round(duration * fps)) + 1
    sc = Scenario(agents=[], props=props, duration=T / fps, fps=fps)
    sim = run_sim(world, sc)
    res = simulate_props(world, props, T, fps, boxes=np.zeros((0, 6)))  # law check: the ground only (no wall in the way)
    path = CameraPath(np.repeat(V[None], T, 0), np.repeat(K[None], T, 0), W, H, fps)
    t0 = time.time()
    summ = write_outputs(out, layer, world, sim, path, overwrite=True, ssaa=2, props=res)
    render_s = time.time() - t0
    cams = load_cameras(out / "cameras.json").frames
    scale = summ["depth_png_scale_m"]
    rec = np.full((T, len(props), 3), np.nan)
    area = np.zeros((T, len(props)))
    for t in range(T):
        ids = np.asarray(Image.open(out / "masks" / f"{t:06d}.png"))
        dep = np.asarray(Image.open(out / "depth" / f"{t:06d}.png")).astype(np.float64) * scale
        Vt, Kt = np.asarray(cams[t].viewmat), np.asarray(cams[t].K)
        Rt = Vt[:3, :3].T
        Ct = -Rt @ Vt[:3, 3]
        for p in range(len(props)):
            ys, xs = np.nonzero((ids == 1 + p) & (dep > 0))  # no agents here: prop p has mask id 1 + p
            if len(xs) < 6 or xs.min() == 0 or ys.min() == 0 or xs.max() == W - 1 or ys.max() == H - 1:
                continue
            d = dep[ys, xs]
            pc = np.stack([(xs + 0.5 - Kt[0, 2]) / Kt[0, 0] * d, (ys + 0.5 - Kt[1, 2]) / Kt[1, 1] * d, d], 1)
            pw = (pc - Vt[:3, 3]) @ Vt[:3, :3]
            m = pw.mean(0)
            ray = (m - Ct) / np.linalg.norm(m - Ct)
            rec[t, p] = m + (2.0 / 3.0) * props[p].size[0] * ray
            area[t, p] = len(xs)
    # a ball partly hidden by the scene gives a biased centre: keep frames with at least 70% of its median mask area
    for p in range(len(props)):
        med = np.median(area[area[:, p] > 0, p]) if (area[:, p] > 0).any() else 0
        rec[area[:, p] < 0.7 * med, p] = np.nan
    return rec, res, fps, render_s


def _on_ground(ctx, p: np.ndarray, r: float) -> np.ndarray:
    world = ctx[1]
    return np.array([p[0], p[1], float(world.height(p[None, :2])[0]) + r])


def _cdiff(x: np.ndarray, fps: float) -> np.ndarray:
    v = np.full_like(x, np.nan)
    v[1:-1] = (x[2:] - x[:-2]) * fps / 2
    return v


def _rel(v: np.ndarray, vt: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(v).all(-1)
    if not ok.any():
        return float("nan"), 0
    e = np.linalg.norm(v[ok] - vt[ok], axis=-1) / np.linalg.norm(vt[ok], axis=-1)
    return float(e.mean()), int(ok.sum())


def uniform(ctx, s: float, out: Path) -> dict:
    from realsim.sim.scenario import PropSpec

    P0, right, half, slope = ctx[7:]
    start = _on_ground(ctx, P0 - right * half, R)
    dur = 2 * half / s
    p = PropSpec("sphere", (R,), tuple(start), velocity=tuple(right * s), friction=0.0, restitution=0.5, mass=0.45,
                 color=(0.95, 0.85, 0.1))
    rec, res, fps, rs = _run(ctx, [p], dur, out)
    v = _cdiff(rec[:, 0], fps)
    t = np.arange(len(rec)) / fps
    err, n = _rel(v, right * s + np.outer(t, slope))  # uniform motion on the (0.1 deg) inclined ground plane
    return {"scenario": "uniform", "speed": s, "vel_rel_err": err, "frames_used": n, "fps": fps, "render_s": rs}


def parabolic(ctx, s: float, out: Path) -> dict:
    from realsim.sim.scenario import PropSpec

    P0, right, half, slope = ctx[7:]
    flight = min(2 * half / s, 0.8)
    vz = G * flight / 2
    start = P0 - right * (s * flight / 2) + [0, 0, 0.6]
    v0 = right * s + [0, 0, vz]
    p = PropSpec("sphere", (R,), tuple(start), velocity=tuple(v0), friction=0.0, restitution=0.5, mass=0.45,
                 color=(0.2, 0.6, 0.95))
    rec, res, fps, rs = _run(ctx, [p], flight, out)
    t = np.arange(len(rec)) / fps
    v = _cdiff(rec[:, 0], fps)
    vt = v0[None] + np.outer(t, [0, 0, -G])
    err, n = _rel(v, vt)
    return {"scenario": "parabolic", "speed": s, "vel_rel_err": err, "frames_used": n, "fps": fps, "render_s": rs}


def collision(ctx, s: float, out: Path) -> dict:
    from realsim.sim.scenario import PropSpec

    P0, right, half, slope = ctx[7:]
    r2 = R  # equal radii keep the line of centres level (a head-on collision: no vertical kick into or off the ground)
    m1, m2 = 0.45, 1.4  # different mass (3.1x): a denser ball
    u1, u2 = s, -s / 2
    gap = 2 * half - R - r2
    tc = gap / (u1 - u2)  # contact time
    xc = -half + R + u1 * tc  # where they meet (along `right`, from P0)
    dur = min(2 * tc, tc + (half - 0.2 - xc) / max(abs(u1), abs(u2), 1e-9))
    a = PropSpec("sphere", (R,), tuple(_on_ground(ctx, P0 - right * half, R)), velocity=tuple(right * u1), mass=m1, friction=0.0,
                 restitution=1.0, color=(0.95, 0.3, 0.2))
    b = PropSpec("sphere", (r2,), tuple(_on_ground(ctx, P0 + right * half, r2)), velocity=tuple(right * u2), mass=m2, friction=0.0,
                 restitution=1.0, color=(0.25, 0.8, 0.3))
    rec, res, fps, rs = _run(ctx, [a, b], dur, out)
    t = np.arange(len(rec)) / fps
    w1, w2 = ((m1 - m2) * u1 + 2 * m2 * u2) / (m1 + m2), ((m2 - m1) * u2 + 2 * m1 * u1) / (m1 + m2)
    v = np.stack([_cdiff(rec[:, 0], fps), _cdiff(rec[:, 1], fps)], 1)  # [T,2,3]
    # the same slope acceleration for both balls (Galilean: it does not change the collision along `right`)
    vt = np.where((t < tc)[:, None, None], np.stack([right * u1, right * u2])[None], np.stack([right * w1, right * w2])[None])
    vt = vt + (t[:, None] * slope[None])[:, None, :]
    near = np.abs(t - tc) <= 1.0 / fps + 0.006  # the central difference spans the 10 ms contact
    v[near] = np.nan
    err, n = _rel(v.reshape(-1, 3), vt.reshape(-1, 3))
    m = np.array([m1, m2])
    pre, post = (t < tc) & ~near, (t > tc) & ~near
    out_d = {"scenario": "collision", "speed": s, "vel_rel_err": err, "frames_used": n, "fps": fps, "render_s": rs}
    if pre.any() and post.any():
        v0 = v - (t[:, None] * slope[None])[:, None, :]  # velocities at the contact time (the common slope drift removed)
        vp = np.nanmean(v0[pre] @ right, 0)
        vq = np.nanmean(v0[post] @ right, 0)
        out_d["momentum_rel_err"] = float(abs(m @ vq - m @ vp) / (m @ np.abs(vp)))
        out_d["energy_rel_err"] = float(abs((m * vq ** 2).sum() / (m * vp ** 2).sum() - 1))
    return out_d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="/tmp/h5demo/scene", help="a trained scene bundle (e.g. a demo's scene/)")
    ap.add_argument("--quick", action="store_true", help="one speed per range")
    ap.add_argument("--distance", type=float, default=5.0, help="metres from the camera to the balls' lane")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ctx = _setup(args.scene, args.distance)
    speeds = ((1.0,), (14.0,)) if args.quick else (SLOW, FAST)
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for fn in (uniform, collision, parabolic):
            for rng_name, sp in zip(("0.5-2 m/s", "8-20 m/s"), speeds):
                for s in sp:
                    r = fn(ctx, s, Path(tmp) / f"{fn.__name__}_{s}")
                    r["range"] = rng_name
                    rows.append(r)
                    extra = ""
                    if "momentum_rel_err" in r:
                        extra = f"  momentum {100 * r['momentum_rel_err']:.2f}%  energy {100 * r['energy_rel_err']:.2f}%"
                    print(f"{r['scenario']:10s} {s:5.1f} m/s  velocity error {100 * r['vel_rel_err']:6.2f}%  "
                          f"({r['frames_used']} frames at {r['fps']:.0f} fps){extra}", flush=True)
    summary = []
    print("\n| scenario | speeds | realsim velocity error (rendered frames) | DiT video generators (issue 15) |")
    print("|---|---|---|---|")
    for scen in ("uniform", "collision", "parabolic"):
        for rng_name, dit in (("0.5-2 m/s", DIT["in_distribution"]), ("8-20 m/s", DIT["out_of_distribution"])):
            es = [r["vel_rel_err"] for r in rows if r["scenario"] == scen and r["range"] == rng_name]
            if es:
                e = float(np.nanmean(es))
                summary.append({"scenario": scen, "range": rng_name, "vel_rel_err_mean": e, "dit": dit})
                print(f"| {scen} | {rng_name} | {100 * e:.2f}% | ~{dit} |")
    p = write_result(RESULTS / "physics.json", {"command": "python bench/physics.py" + (" --quick" if args.quick else "")
                                                + f" --scene {args.scene}", "scene": str(Path(args.scene).resolve()),
                                                "summary": summary, "results": rows, "wall_s": round(time.time() - t0, 1),
                                                "recovery": "mask centroid + 16-bit depth PNG (1 mm) + cameras.json",
                                                "ground_tilt_deg": round(float(np.degrees(np.arcsin(np.linalg.norm(ctx[10]) / G))), 4),
                                                "dit_reference": DIT})
    print(json.dumps({"written": str(p)}))


if __name__ == "__main__":
    main()
