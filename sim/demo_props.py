"""The demo's props (`realsim demo`, SimulateOptions.demo_props): placed from the finished agent motion and camera path."""
from __future__ import annotations

__all__ = ["demo_prop_specs"]


def demo_prop_specs(world, path, sim, seed: int) -> list:
    """The demo's props, placed from the finished agent motion and camera path: a football kicked across the first frame's
    view 5 m ahead of the camera, and two cardboard boxes on the walk of the agent nearest the camera, ahead of where it is
    at 30% and 60% of the clip (it walks into them unless its path bends away first)."""
    import numpy as np

    from .scenario import PropSpec

    rng = np.random.default_rng(seed + 15)
    V = np.asarray(path.viewmats[0], np.float64)
    R = V[:3, :3].T
    C = -R @ V[:3, 3]
    fwd = R[:, 2].copy()
    fwd[2] = 0.0
    fwd /= max(np.linalg.norm(fwd), 1e-9)
    right = np.array([fwd[1], -fwd[0], 0.0])
    if right @ R[:, 0] < 0:
        right = -right
    half_w = 0.5 * path.width / float(path.Ks[0][0, 0]) * 5.0  # half the view's width 5 m ahead
    start = world.nearest_walkable((C[:2] + 5.0 * fwd[:2] - 0.6 * half_w * right[:2])[None])[0]
    speed = float(np.clip(1.2 * half_w / max(sim.n_frames / path.fps, 1e-3), 1.5, 4.0))
    out = [PropSpec("sphere", (0.11,), (start[0], start[1], float(world.height(start[None])[0]) + 0.111),
                    velocity=tuple(speed * right), mass=0.43, friction=0.6, restitution=0.75, color=(0.95, 0.85, 0.1),
                    name="ball")]
    if sim.n_agents:
        d = np.linalg.norm(sim.joints[0, :, 0, :2] - C[:2], axis=1)
        a = int(np.argmin(d))
        T = sim.n_frames
        for k, f in enumerate((0.3, 0.6)):
            t = min(int(f * T), T - 1)
            t2 = min(t + max(1, int(0.5 * path.fps)), T - 1)  # where the agent is half a second later: in its way
            xy = sim.joints[t2, a, 0, :2] + rng.uniform(-0.05, 0.05, 2)
            h = float(world.height(xy[None])[0])
            out.append(PropSpec("box", (0.4, 0.4, 0.4), (xy[0], xy[1], h + 0.201), mass=2.0, friction=0.5, restitution=0.2,
                                color=(0.7, 0.5, 0.3) if k == 0 else (0.3, 0.45, 0.75), name=f"box{k}"))
    return out
