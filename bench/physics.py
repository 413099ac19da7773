"""Physical laws in rendered video: balls simulated by MuJoCo in a reconstructed scene, recovered from the rendered output.

Scenarios (each at slow 0.5-2 m/s and fast 8-20 m/s speeds): uniform motion of a frictionless ball sliding on the scene's
ground, an elastic head-on collision of two balls of different mass, a parabolic throw. Each is rendered by the normal sim
outputs (Gaussian scene + props, static camera = the capture's middle camera), then every ball's 3D centre per frame is
recovered FROM THE FILES WRITTEN (instance mask masks/NNNNNN.png + 16-bit depth depth/NNNNNN.png + cameras.json: a sphere of
the known radius fitted to the mask's interior depth points, physics_recover.py), never from the simulator state.
Velocity: the law's form x0 + v0 t + a t^2 / 2 (all free) fitted robustly to every frame of each free-flight segment, compared
with the analytic law (v0 + a_law t; the 1-D elastic collision) as the mean relative error |v - v_law| / |v_law| over the
frames where the ball is fully seen; central differences of consecutive frames are reported beside it. The collision also
gives momentum and kinetic energy before vs after from the recovered velocities. props.json (the simulator's state) is read
only to report how far the recovered centres are from it (the recovery's own error, in mm).

    python bench/physics.py --scene /tmp/demo2/scene --scene /tmp/p15/lund_scene   # a demo street and a real capture
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
from physics_recover import central_diff, fit_segment, recover_centres, rel_err

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
    write_outputs(out, layer, world, sim, path, overwrite=True, ssaa=2, props=res)
    render_s = time.time() - t0
    rec, area = recover_centres(out, [p.size[0] for p in props])
    # a ball partly hidden by the scene still fits (the sphere fit uses what is seen); drop frames showing under 40% of it
    for p in range(len(props)):
        med = np.median(area[area[:, p] > 0, p]) if (area[:, p] > 0).any() else 0
        rec[area[:, p] < 0.4 * med, p] = np.nan
    state = np.array([q["position"] for q in json.loads((out / "props.json").read_text())["props"]]).transpose(1, 0, 2)
    err = np.linalg.norm(rec - state, axis=-1)  # [T,P] recovery error against the simulator's state (diagnosis only)
    dev = rec - state - np.nanmean(rec - state, axis=0, keepdims=True)
    diag = {"pos_err_mm_median": round(1000 * float(np.nanmedian(err)), 3),
            "pos_noise_mm": round(1000 * float(np.sqrt(np.nanmean((dev ** 2).sum(-1)))), 3)}
    return rec, res, fps, render_s, diag


def _on_ground(ctx, p: np.ndarray, r: float) -> np.ndarray:
    world = ctx[1]
    return np.array([p[0], p[1], float(world.height(p[None, :2])[0]) + r])


def _score(t: np.ndarray, x: np.ndarray, vt: np.ndarray, fps: float, segments: list[np.ndarray]) -> dict:
    """Velocity errors of one ball's recovered track x [T,3] against the law vt [T,3]: the fitted law per segment (mask
    [T] of frames in free flight) and central differences (inside the segments only)."""
    vf = np.full_like(x, np.nan)
    vc = np.full_like(x, np.nan)
    for seg in segments:
        xs = np.where(seg[:, None], x, np.nan)
        if np.isfinite(xs).all(1).sum() >= 4:
            vf[seg] = fit_segment(t, xs)[1][seg]
        c = central_diff(xs, fps)
        vc[seg] = c[seg]
    return {"fit": vf, "cdiff": vc}


def _row(name: str, s: float, fps: float, rs: float, diag: dict, v: dict, vt: np.ndarray) -> dict:
    e, n = rel_err(v["fit"].reshape(-1, 3), vt.reshape(-1, 3))
    ec, nc = rel_err(v["cdiff"].reshape(-1, 3), vt.reshape(-1, 3))
    return {"scenario": name, "speed": s, "vel_rel_err": e, "frames_used": n, "vel_rel_err_cdiff": ec, "cdiff_frames": nc,
            "fps": fps, "render_s": rs, **diag}


def uniform(ctx, s: float, out: Path) -> dict:
    from realsim.sim.scenario import PropSpec

    P0, right, half, slope = ctx[7:]
    start = _on_ground(ctx, P0 - right * half, R)
    dur = 2 * half / s
    p = PropSpec("sphere", (R,), tuple(start), velocity=tuple(right * s), friction=0.0, restitution=0.5, mass=0.45,
                 color=(0.95, 0.85, 0.1))
    rec, res, fps, rs, diag = _run(ctx, [p], dur, out)
    t = np.arange(len(rec)) / fps
    vt = right * s + np.outer(t, slope)  # uniform motion on the (0.1 deg) inclined ground plane
    return _row("uniform", s, fps, rs, diag, _score(t, rec[:, 0], vt, fps, [np.ones(len(t), bool)]), vt)


def parabolic(ctx, s: float, out: Path) -> dict:
    from realsim.sim.scenario import PropSpec

    P0, right, half, slope = ctx[7:]
    flight = min(2 * half / s, 0.8)
    vz = G * flight / 2
    start = P0 - right * (s * flight / 2) + [0, 0, 0.6]
    v0 = right * s + [0, 0, vz]
    p = PropSpec("sphere", (R,), tuple(start), velocity=tuple(v0), friction=0.0, restitution=0.5, mass=0.45,
                 color=(0.2, 0.6, 0.95))
    rec, res, fps, rs, diag = _run(ctx, [p], flight, out)
    t = np.arange(len(rec)) / fps
    vt = v0[None] + np.outer(t, [0, 0, -G])
    return _row("parabolic", s, fps, rs, diag, _score(t, rec[:, 0], vt, fps, [np.ones(len(t), bool)]), vt)


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
    rec, res, fps, rs, diag = _run(ctx, [a, b], dur, out)
    t = np.arange(len(rec)) / fps
    w1, w2 = ((m1 - m2) * u1 + 2 * m2 * u2) / (m1 + m2), ((m2 - m1) * u2 + 2 * m1 * u1) / (m1 + m2)
    # the same slope acceleration for both balls (Galilean: it does not change the collision along `right`)
    vt = np.where((t < tc)[:, None, None], np.stack([right * u1, right * u2])[None], np.stack([right * w1, right * w2])[None])
    vt = vt + (t[:, None] * slope[None])[:, None, :]
    # free flight before and after the 10 ms contact (it starts at tc; central differences must not straddle it)
    pre, post = t < tc - 0.002, t > tc + 0.012
    sc = [_score(t, rec[:, k], vt[:, k], fps, [pre, post]) for k in range(2)]
    v = {k: np.stack([sc[0][k], sc[1][k]], 1) for k in ("fit", "cdiff")}  # [T,2,3]
    v["cdiff"][np.abs(t - tc) <= 1.0 / fps + 0.012] = np.nan  # a central difference next to the contact spans it
    out_d = _row("collision", s, fps, rs, diag, v, vt)
    m = np.array([m1, m2])
    vf = v["fit"] - (t[:, None] * slope[None])[:, None, :]  # velocities with the common slope drift removed
    if np.isfinite(vf[pre]).any() and np.isfinite(vf[post]).any():
        vp = np.nanmean(vf[pre] @ right, 0)
        vq = np.nanmean(vf[post] @ right, 0)
        out_d["momentum_rel_err"] = float(abs(m @ vq - m @ vp) / (m @ np.abs(vp)))
        out_d["energy_rel_err"] = float(abs((m * vq ** 2).sum() / (m * vp ** 2).sum() - 1))
    return out_d


def _label(scene_dir: str) -> str:
    meta = json.loads((Path(scene_dir) / "scene.json").read_text()).get("metadata") or {}
    if "SYNTHETIC" in json.dumps(meta).upper() or (Path(scene_dir).parent / "demo.json").is_file():
        return "demo street (synthetic capture)"
    src = str(meta.get("source", scene_dir)) if isinstance(meta, dict) else str(scene_dir)
    return f"real capture ({Path(src).parent.name if Path(src).name == 'images' else Path(src).name})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", action="append", help="a trained scene bundle (e.g. a demo's scene/); repeat for more scenes")
    ap.add_argument("--quick", action="store_true", help="one speed per range")
    ap.add_argument("--distance", type=float, default=5.0, help="metres from the camera to the balls' lane")
    args = ap.parse_args()
    scenes = args.scene or ["/tmp/demo2/scene"]
    torch.set_num_threads(2)
    speeds = ((1.0,), (14.0,)) if args.quick else (SLOW, FAST)
    rows = []
    t0 = time.time()
    tilt = {}
    for scene_dir in scenes:
        ctx = _setup(scene_dir, args.distance)
        label = _label(scene_dir)
        tilt[label] = round(float(np.degrees(np.arcsin(np.linalg.norm(ctx[10]) / G))), 4)
        with tempfile.TemporaryDirectory() as tmp:
            for fn in (uniform, collision, parabolic):
                for rng_name, sp in zip(("0.5-2 m/s", "8-20 m/s"), speeds):
                    for s in sp:
                        r = fn(ctx, s, Path(tmp) / f"{fn.__name__}_{s}")
                        r.update(range=rng_name, scene=label)
                        rows.append(r)
                        extra = ""
                        if "momentum_rel_err" in r:
                            extra = f"  momentum {100 * r['momentum_rel_err']:.2f}%  energy {100 * r['energy_rel_err']:.2f}%"
                        print(f"{label[:12]:12s} {r['scenario']:10s} {s:5.1f} m/s  velocity error {100 * r['vel_rel_err']:6.3f}% "
                              f"(central differences {100 * r['vel_rel_err_cdiff']:6.3f}%; {r['frames_used']} frames at "
                              f"{r['fps']:.0f} fps; centre vs state {r['pos_err_mm_median']:.2f} mm, noise "
                              f"{r['pos_noise_mm']:.2f} mm){extra}", flush=True)
    summary = []
    print("\n| scene | scenario | speeds | velocity error, fitted law (max) | central differences (max) | DiT (issue 15) |")
    print("|---|---|---|---|---|---|")
    for label in dict.fromkeys(r["scene"] for r in rows):
        for scen in ("uniform", "collision", "parabolic"):
            for rng_name, dit in (("0.5-2 m/s", DIT["in_distribution"]), ("8-20 m/s", DIT["out_of_distribution"])):
                sel = [r for r in rows if r["scene"] == label and r["scenario"] == scen and r["range"] == rng_name]
                if not sel:
                    continue
                e, ec = [r["vel_rel_err"] for r in sel], [r["vel_rel_err_cdiff"] for r in sel]
                summary.append({"scene": label, "scenario": scen, "range": rng_name, "vel_rel_err_mean": float(np.nanmean(e)),
                                "vel_rel_err_max": float(np.nanmax(e)), "cdiff_mean": float(np.nanmean(ec)),
                                "cdiff_max": float(np.nanmax(ec)), "dit": dit})
                print(f"| {label} | {scen} | {rng_name} | {100 * np.nanmean(e):.3f}% ({100 * np.nanmax(e):.3f}%) | "
                      f"{100 * np.nanmean(ec):.2f}% ({100 * np.nanmax(ec):.2f}%) | ~{dit} |")
    p = write_result(RESULTS / "physics.json", {"scenes": [str(Path(s).resolve()) for s in scenes], "summary": summary,
                                                "results": rows, "wall_s": round(time.time() - t0, 1),
                                                "recovery": "sphere fit to mask-interior depth points (16-bit depth PNG, "
                                                            "1 mm) + cameras.json; velocity from the law's form fitted "
                                                            "to all frames (IRLS, Huber)",
                                                "ground_tilt_deg": tilt, "dit_reference": DIT})
    print(json.dumps({"written": str(p)}))


if __name__ == "__main__":
    main()
