"""The parts of bench/motion.py (issue 16's measures), one function each: shared skating metric (raw model, rendered
sim, real mocap), diversity under identical commands vs real mocap, lateral / along-track / end tracking, style accuracy
of a classifier trained on real clips, along-track speed tracking (stop-and-go, 0.5-3 m/s) and sim-loop step time with
many agents; diffusion (sim settings) vs the motion-matching baseline vs real mocap, and `table` that puts them in one.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from _common import REPO

sys.path.insert(0, str(REPO / "tests"))
SEED = 0  # added to every controller seed below (bench/motion.py --seed): the same measures over other noise draws


def skating_part(model, ds, weights: str | None = None, seconds: float = 10.0) -> dict:
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
    ctrl = MotionController(model, 4, ["neutral"], seed=SEED + 3, past_noise=PAST_NOISE)
    ro = rollout(ctrl, make_path("circle", seconds, 1.2, 2.0), int(seconds * 30))
    out["diffusion_circle_2m_raw"] = float(np.mean([skating(ro.joints[a], ro.root[a, :, 2], feet) for a in range(4)]))
    from realsim.sim.motion.baseline import MotionMatchingController

    ro = rollout(MotionMatchingController(ds, 4, ["neutral"]), make_path("circle", seconds, 1.2, 2.0), int(seconds * 30))
    out["motion_matching_circle_2m"] = float(np.mean([skating(ro.joints[a], ro.root[a, :, 2], feet) for a in range(4)]))
    sc = crossing(10, 4.0, 16.0, 12.0)
    res = run_sim(hall(4.0, 16.0), sc, motion="controller", motion_weights=weights)
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
    with and without the sim's per-agent start variation and for motion matching, next to n real walk windows."""
    from realsim.sim.loop import PAST_NOISE
    from realsim.sim.motion.baseline import MotionMatchingController
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import make_path, rollout
    from realsim.sim.motion.variety import mocap_diversity, pairwise_joint_distance, root_frame_joints

    T = int(seconds * 30)
    out: dict = {"frames": T, "agents": n}
    for tag, mk in (("diffusion_no_variation", lambda: MotionController(model, n, ["neutral"], seed=SEED + 0, past_noise=0.0)),
                    ("diffusion_sim", lambda: MotionController(model, n, ["neutral"], seed=SEED + 0, past_noise=PAST_NOISE)),
                    ("motion_matching", lambda: MotionMatchingController(ds, n, ["neutral"]))):
        ro = rollout(mk(), make_path("straight", seconds, 1.3), T)
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
        ro = rollout(MotionController(model, 2, ["neutral"], seed=SEED + 0), path, T)
        along = ro.root[:, :, 0]  # straight along +X: the arc length is x
        err = np.abs(along - s[1: T + 1][None])
        out[name] = {"mean_m": float(err.mean()), "max_m": float(err.max()),
                     "speed_cmd_m_s": float(sp[:T].mean()),
                     "speed_body_m_s": float(np.abs(np.diff(along, axis=1)).sum(1).mean() * 30 / (T - 1))}
    return out


def realtime_part(model, ds, agents: int = 32, seconds: float = 6.0, weights: str | None = None) -> dict:
    """The sim loop (crowd + diffusion controller + constraints + foot locking), rendering excluded: wall and process CPU
    ms per 30 Hz frame (CPU time: what one dedicated core would need; wall time under load is an upper bound); and the
    controllers alone (diffusion with the sim's settings, motion matching) for the same number of agents."""
    from crowd_scenes import crossing, hall

    from realsim.sim.loop import run_sim
    from realsim.sim.motion.baseline import MotionMatchingController
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import make_path

    sc = crossing(agents, 6.0, 24.0, seconds)
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_sim(hall(6.0, 24.0), sc, motion="controller", motion_weights=weights)
    dt, dc = (time.perf_counter() - t0) / res.n_frames, (time.process_time() - c0) / res.n_frames
    out = {"agents": agents, "sim_ms_per_frame": 1000 * dt, "sim_cpu_ms_per_frame": 1000 * dc,
           "ms_per_agent_step": 1000 * dt / agents, "cpu_ms_per_agent_step": 1000 * dc / agents,
           "realtime_30hz_wall": dt <= 1 / 30, "realtime_30hz_cpu": dc <= 1 / 30, "torch_threads": 1}
    path = make_path("circle", 6.0, 1.2, 2.0)
    ctrls = [("diffusion", lambda: MotionController(model, agents, ["neutral"], seed=SEED + 0))]
    if ds is not None:  # the baseline needs the real clips
        ctrls.append(("motion_matching", lambda: MotionMatchingController(ds, agents, ["neutral"])))
    for name, mk in ctrls:
        ctrl = mk()
        fut = lambda t: np.repeat(path[None, t + 1: t + 46], agents, 0)  # noqa: E731
        for t in range(10):
            ctrl.step(fut(t))
        t0, c0 = time.perf_counter(), time.process_time()
        for t in range(10, 130):
            ctrl.step(fut(t))
        out[f"{name}_ctrl_ms_per_frame"] = 1000 * (time.perf_counter() - t0) / 120
        out[f"{name}_ctrl_cpu_ms_per_frame"] = 1000 * (time.process_time() - c0) / 120
    return out


def tracking_part(model, ds, seconds: float = 10.0) -> dict:
    """Lateral (distance to the command polyline), along-track and end error (cm) on circle r=2 m, zig-zag and
    stop-and-go at 1.2 m/s, 4 agents each: diffusion with the sim's settings vs motion matching."""
    from realsim.sim.loop import PAST_NOISE
    from realsim.sim.motion.baseline import MotionMatchingController
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.metrics import along_track, path_metrics
    from realsim.sim.motion.sample import make_path, rollout

    out: dict = {}
    T = int(seconds * 30)
    for name, mk in (("diffusion", lambda: MotionController(model, 4, ["neutral"], seed=SEED + 3, past_noise=PAST_NOISE)),
                     ("motion_matching", lambda: MotionMatchingController(ds, 4, ["neutral"]))):
        rows = {}
        for p in ("circle", "zigzag", "stopgo"):
            path = make_path(p, seconds, 1.2, 2.0)
            ro = rollout(mk(), path, T)
            lat = path_metrics(ro, path)["traj_mean_cm"]
            al = [along_track(ro.root[a, :, :2], path) for a in range(ro.root.shape[0])]
            rows[p] = {"lateral_cm": float(np.mean(lat)), "along_cm": float(np.mean([r["along_mean_cm"] for r in al])),
                       "along_max_cm": float(np.max([r["along_max_cm"] for r in al])),
                       "end_cm": float(np.mean([r["end_cm"] for r in al]))}
        rows["mean"] = {k: float(np.mean([rows[p][k] for p in ("circle", "zigzag", "stopgo")]))
                        for k in ("lateral_cm", "along_cm", "along_max_cm", "end_cm")}
        out[name] = rows
    return out


def style_part(model, ds, seconds: float = 8.0) -> dict:
    """Style accuracy of a walking-style classifier trained on the real walk clips (sim/motion/style_classifier.py,
    trained here in seconds): on held-out real clips (leave one take out) and on generated walks per style (each style
    commanded at its clips' mean speed, straight, 2 agents), with the sim's settings, without style guidance and by
    motion matching."""
    from realsim.sim.motion import style_classifier as sc
    from realsim.sim.motion.baseline import MotionMatchingController
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import make_path, rollout

    walks = sc.style_walks([c for c in ds.clips if "xia" not in c.source])
    t0 = time.time()
    acc_real, per_real = sc.held_out_accuracy(walks)
    clf = sc.train_on_walks(walks)
    out: dict = {"classes": len(walks), "train_s": round(time.time() - t0, 1), "real_held_out": acc_real,
                 "real_per_style": per_real}
    styles = [s for s in walks if s in model.styles]
    makers = {"generated_sim": lambda s: MotionController(model, 2, [s], seed=SEED + 1),
              "generated_no_guidance": lambda s: MotionController(model, 2, [s], seed=SEED + 1, w_style=0.0),
              "motion_matching": lambda s: MotionMatchingController(ds, 2, [s])}
    for tag, mk in makers.items():
        per = {}
        for s in styles:
            v = float(np.mean([np.linalg.norm(c.feat[:, :2], axis=1).mean() for c in walks[s]]))
            ro = rollout(mk(s), make_path("straight", seconds, v), int(seconds * 30))
            per[s] = float(np.mean([clf.accuracy(sc.rollout_descriptors(ro, a), styles.index(s)) for a in range(2)]))
        out[tag] = float(np.mean(list(per.values())))
        out[tag + "_per_style"] = per
    return out


def table(res: dict) -> str:
    """One markdown table (README) from the parts that ran; n/a where a measure does not apply, '-' where not run."""
    sk, tr, dv, st, rt = (res.get(k, {}) for k in ("skating", "tracking", "diversity", "style", "realtime"))
    NA = "n/a"

    def f(v, fmt="{:.1f}"):
        return v if isinstance(v, str) else "-" if v is None else fmt.format(v)

    def trk(name, k):
        return (tr.get(name) or {}).get("mean", {}).get(k)

    def step(name):
        return rt[f"{name}_ctrl_cpu_ms_per_frame"] / rt["agents"] if rt else None

    rows = [("diffusion (sim settings)", sk.get("diffusion_circle_2m_raw"), sk.get("sim_rendered"), trk("diffusion", "lateral_cm"),
             trk("diffusion", "along_cm"), trk("diffusion", "end_cm"), dv.get("diffusion_sim"), st.get("generated_sim"),
             step("diffusion")),
            ("motion matching", sk.get("motion_matching_circle_2m"), NA, trk("motion_matching", "lateral_cm"),
             trk("motion_matching", "along_cm"), trk("motion_matching", "end_cm"), dv.get("motion_matching"),
             st.get("motion_matching"), step("motion_matching")),
            ("real mocap (walk clips)", sk.get("mocap_walk"), sk.get("mocap_walk"), NA, NA, NA,
             dv.get("mocap_walk_normal_style"), st.get("real_held_out"), NA)]
    lines = ["| method | skating raw, 2 m circle (cm/s) | skating as rendered (cm/s) | lateral (cm) | along-track (cm) | "
             "end (cm) | diversity (cm) | style accuracy | CPU ms per agent step |", "|---" * 9 + "|"]
    for r in rows:
        lines.append(f"| {r[0]} | " + " | ".join([f(r[1]), f(r[2]), f(r[3]), f(r[4]), f(r[5]), f(r[6]),
                                                   f(r[7], "{:.0%}"), f(r[8], "{:.2f}")]) + " |")
    return "\n".join(lines)
