"""Issue 16 measures of the motion: shared skating metric (raw model, rendered sim, real mocap), diversity under identical
commands vs real mocap, along-track speed tracking (stop-and-go, 0.5-3 m/s) and sim-loop step time with many agents.

    python bench/motion_human.py [--parts skating,diversity,speed,realtime] [--agents 32]

Also run by bench/motion.py (`--parts` there). Prints a table and writes bench/results/motion_human.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import REPO, RESULTS, load_avg, write_result

sys.path.insert(0, str(REPO / "tests"))


def _dataset(data: Path):
    from realsim.sim.motion.data import build_dataset

    return build_dataset(data)


def skating_part(model, ds, seconds: float = 10.0) -> dict:
    """Shared metric (metrics.skating): diffusion rollout on a 2 m circle (raw, no post-processing), the sim as rendered
    (10 agents crossing a corridor: raw model pose vs written joints), and real walk clips."""
    from crowd_scenes import crossing, hall

    from realsim.sim.loop import PAST_NOISE, run_sim
    from realsim.sim.motion.controller import M_TO_WORLD, MotionController
    from realsim.sim.motion.data import features_to_poses
    from realsim.sim.motion.metrics import skating
    from realsim.sim.motion.sample import make_path, rollout

    feet = [15, 19, 16, 20]  # Foot_L, Foot_R, Toes_L, Toes_R on the canonical skeleton
    out: dict = {}
    ctrl = MotionController(model, 4, ["neutral"], seed=3, past_noise=PAST_NOISE)
    ro = rollout(ctrl, make_path("circle", seconds, 1.2, 2.0), int(seconds * 30))
    out["diffusion_circle_2m_raw"] = float(np.mean([skating(ro.joints[a], ro.root[a, :, 2], feet) for a in range(4)]))
    sc = crossing(10, 4.0, 16.0, 12.0)
    res = run_sim(hall(4.0, 16.0), sc, motion="controller")
    out["sim_raw"] = res.metrics["skate_raw_cm_s"]
    out["sim_rendered"] = res.metrics["skate_cm_s"]
    mc = []
    for c in ds.clips:
        if c.action == "walk" and len(c.feat) >= 60:
            P = features_to_poses(c.feat, root_xz=c.root_xz, yaw=c.yaw)
            mc.append(skating(P.joints @ M_TO_WORLD.T, 0.0, feet))
    out["mocap_walk"] = float(np.mean(mc))
    out["mocap_walk_clips"] = len(mc)
    out["rendered_over_mocap"] = out["sim_rendered"] / out["mocap_walk"]
    return out


def diversity_part(model, ds, seconds: float = 5.0, n: int = 8) -> dict:
    """Mean pairwise root-frame joint distance (cm) of n agents given identical commands (straight, 1.3 m/s, neutral),
    with and without the sim's per-agent start variation, next to n real walk windows of the same length."""
    from realsim.sim.loop import PAST_NOISE
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import make_path, rollout
    from realsim.sim.motion.variety import mocap_diversity, pairwise_joint_distance, root_frame_joints

    T = int(seconds * 30)
    out: dict = {"frames": T, "agents": n}
    for tag, pn in (("diffusion_no_variation", 0.0), ("diffusion_sim", PAST_NOISE)):
        ro = rollout(MotionController(model, n, ["neutral"], seed=0, past_noise=pn), make_path("straight", seconds, 1.3), T)
        out[tag] = 100 * pairwise_joint_distance(root_frame_joints(ro.joints, ro.root[..., :2], ro.heading))
    normal = [c for c in ds.clips if c.style in ("normal", "neutral")]
    out["mocap_walk_normal_style"] = 100 * float(np.mean([mocap_diversity(normal, T, n, s) for s in range(3)]))
    out["mocap_walk_all_styles"] = 100 * float(np.mean([mocap_diversity(ds.clips, T, n, s) for s in range(3)]))
    out["sim_over_mocap_normal"] = out["diffusion_sim"] / out["mocap_walk_normal_style"]
    return out


def speed_part(model, seconds: float = 10.0) -> dict:
    """Along-track tracking: stop-and-go (2 s walk / 1.5 s stand) at 0.5-3 m/s, plus a speed ramp 0.5 -> 3 -> 0.5 m/s.
    Per frame the body's arc length along the command (projected) vs the commanded one: mean / max |difference| (m)."""
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import rollout

    out: dict = {}
    T = int(seconds * 30)
    t = np.arange(T + 60) / 30
    for name, sp in [(f"stopgo_{v}", np.where(t % 3.5 < 2.0, v, 0.0)) for v in (0.5, 1.0, 2.0, 3.0)] + \
            [("ramp_0.5_3_0.5", 0.5 + 2.5 * np.sin(np.pi * np.clip(t / seconds, 0, 1)))]:
        s = np.concatenate([[0.0], np.cumsum(sp[1:] / 30)])
        path = np.stack([s, np.zeros_like(s)], -1)
        ro = rollout(MotionController(model, 2, ["neutral"], seed=0), path, T)
        along = ro.root[:, :, 0]  # straight along +X: the arc length is x
        err = np.abs(along - s[1: T + 1][None])
        out[name] = {"mean_m": float(err.mean()), "max_m": float(err.max()),
                     "speed_cmd_m_s": float(sp[:T].mean()),
                     "speed_body_m_s": float(np.abs(np.diff(along, axis=1)).sum(1).mean() * 30 / (T - 1))}
    return out


def realtime_part(agents: int = 32, seconds: float = 6.0) -> dict:
    """The sim loop (crowd + diffusion controller + constraints + foot locking), rendering excluded: ms per 30 Hz frame."""
    from crowd_scenes import crossing, hall

    from realsim.sim.loop import run_sim

    sc = crossing(agents, 6.0, 24.0, seconds)
    t0 = time.perf_counter()
    res = run_sim(hall(6.0, 24.0), sc, motion="controller")
    dt = (time.perf_counter() - t0) / res.n_frames
    return {"agents": agents, "ms_per_frame": 1000 * dt, "ms_per_agent_step": 1000 * dt / agents,
            "realtime_30hz": dt <= 1 / 30, "torch_threads": 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="skating,diversity,speed,realtime")
    ap.add_argument("--agents", type=int, default=32)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "motion_human.json")
    args = ap.parse_args()
    from realsim.sim.motion.model import MotionModel, default_weights_path

    parts = args.parts.split(",")
    model = MotionModel.load(default_weights_path())
    data = Path(args.data) if args.data else Path(os.environ.get("REALSIM_DATA", REPO.parent / "shared" / "data")) / "motion"
    ds = _dataset(data) if {"skating", "diversity"} & set(parts) else None
    res: dict = {"load_avg_start": load_avg(), "cores": os.cpu_count()}
    fns = {"skating": lambda: skating_part(model, ds), "diversity": lambda: diversity_part(model, ds),
           "speed": lambda: speed_part(model), "realtime": lambda: realtime_part(args.agents)}
    for p in parts:
        t = time.time()
        res[p] = fns[p]()
        print(f"{p} ({time.time() - t:.0f} s): {res[p]}")
    res["load_avg_end"] = load_avg()
    write_result(args.out, res)
    print(f"wrote {args.out} (load avg {res['load_avg_start']} -> {res['load_avg_end']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
