"""End-to-end entry points behind `realsim simulate` and `realsim demo` (the CLI only parses arguments and prints)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realsim.assets.atomic import check_output_dir, check_writable, make_dirs, write_text_atomic
from realsim.assets.errors import InputError, RealsimError
from realsim.assets.progress import ProgressFn, report

from .demo_poses import prebuild_kernels, proc_cpu, run_demo_poses
from .demo_props import demo_prop_specs
from .scenario import Scenario, default_scenario, load_scenario

__all__ = ["SimulateOptions", "simulate_scene", "DemoOptions", "run_demo", "demo_simulate_options"]

log = logging.getLogger("realsim.sim.pipeline")

DEMO_EPOCHS = 60  # demo training length in epochs of the photos (1560 its. for 26): held-out interp. 24.2 dB at 30, 25.2 at 60
# growth to 80% of the run (capped at 17k anchors) instead of the preset's 60% was measured and not kept: +0.20 dB mean
# over seeds 0-4 in paired 1-thread training runs, but in the fresh-clone demo (seed 0, 2 threads) +0.12 dB for +17%
# training CPU (297 -> 348 s) and +40 s wall, against the ~5 minute target (issue 12)
# the synthetic walk (photos ~1 m apart) starts from denser points (recon/dense_init.py, every 8 px) with 5 Gaussians per
# anchor instead of 10: interpolated held-out over seeds 0-4 26.33 -> 27.81 dB mean (+1.0 to +2.0 each), +15% training
# CPU (1-thread runs from the demo's poses: bench/demo_train.py, bench/results/demo_dense_init.json). lund: no gain.
DEMO_DENSE_INIT_PX, DEMO_OFFSETS = 8, 5
# no anchor growth in the demo, by choice: its dense start (28k anchors on seed 0) sat above cpu-fast's 20k cap, which
# had silently stopped growth; growth let run (cap 50k, 28k -> 33k anchors on seed 0) measured, paired over seeds 0-4
# (1-thread bench/demo_train.py, bench/results/demo_dense_init.json): interpolated held-out -0.01 dB mean (-0.24 to
# +0.20), extrapolated +0.46 dB, training wall +17% (197 -> 230 s in the 2-thread demo): not worth it against ~5 min
DEMO_GROWTH_LEVELS = 0  # ScaffoldStrategy.update_depth: 0 = no growth (pruning still runs)
HAND_HELD_CAMERA_HEIGHT_M = 1.6  # `demo --images` without GPS or a scale: metres from this camera height above the ground


@dataclass
class SimulateOptions:
    scenario: str | None = None  # YAML file
    agents: int | None = None  # overrides / creates N random agents
    seconds: float | None = None
    seed: int | None = None
    scale: float | None = None  # metres per scene unit (non-metric scenes)
    camera: str | None = None  # interp | orbit | spiral | follow | static | FILE.json
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    motion: str = "auto"  # auto | controller | procedural
    motion_weights: str | None = None  # a motion model file instead of the shipped weights
    backend: str = "auto"  # Gaussian rasteriser backend
    ssaa: int = 2
    overwrite: bool = False
    preview_every: int = 0
    max_pixels: int | None = None  # frame-size guard (None: $REALSIM_MAX_PIXELS, else 4096x4096; see render.limits)
    lod: float | None = None  # level of detail of the Gaussian render (pixels; recon.lod), None: exact
    demo_props: bool = False  # add the demo's props: a ball kicked across the view, boxes in agents' way (demo_props.py)


def _scenario(opts: SimulateOptions) -> Scenario:
    sc = load_scenario(opts.scenario) if opts.scenario else default_scenario(opts.agents if opts.agents is not None else 6)
    if opts.scenario and opts.agents is not None:
        # --agents with a scenario: add random agents up to N
        from .scenario import AgentSpec

        extra = opts.agents - sc.n_agents
        if extra > 0:
            sc.agents.append(AgentSpec(count=extra))
    if opts.seconds is not None:
        if not (0 < opts.seconds <= 600):
            raise InputError(f"--seconds must be in (0, 600], got {opts.seconds}")
        sc.duration = float(opts.seconds)
    if opts.seed is not None:
        sc.seed = int(opts.seed)
    if opts.fps is not None:
        if not (1 <= opts.fps <= 120):
            raise InputError(f"--fps must be in [1, 120], got {opts.fps}")
        sc.fps = float(opts.fps)
    if opts.scale is not None:
        if not opts.scale > 0:
            raise InputError(f"--scale must be positive metres per scene unit, got {opts.scale}")
        sc.scale = float(opts.scale)
    if opts.camera is not None:
        sc.camera.path = opts.camera
    for k in ("width", "height"):
        v = getattr(opts, k)
        if v is not None:
            if v < 16 or v % 2:
                raise InputError(f"--{k} must be an even number >= 16, got {v}")
            setattr(sc.camera, k, int(v))
    if sc.n_agents == 0 and not sc.props:
        raise InputError("no agents or props to simulate (give --agents N, or agents or props in the scenario)")
    if sc.n_agents > 64:
        raise InputError(f"{sc.n_agents} agents is more than this CPU sim handles (max 64)")
    return sc


def simulate_scene(scene_path: str | os.PathLike, out_dir: str | os.PathLike, opts: SimulateOptions | None = None,
                   progress: ProgressFn | None = None, provenance: dict | None = None) -> dict[str, Any]:
    """Load a scene bundle, build its World, simulate the scenario and write the video + streams. Returns sim.json's dict."""
    from realsim.recon import LODConfig, load_scene, with_lod

    from .loop import run_sim
    from .camera import make_camera_path, metric_frames, output_intrinsics, spawn_region
    from .follow import plan_follow
    from .outputs import gaussian_layer, write_outputs
    from .world import world_from_scene

    opts = opts or SimulateOptions()
    if opts.ssaa < 1 or opts.ssaa > 4:
        raise InputError(f"--ssaa must be 1..4, got {opts.ssaa}")
    out_dir = Path(out_dir)
    check_output_dir(out_dir, opts.overwrite)
    sc = _scenario(opts)
    from realsim.render.limits import check_frame_size

    if sc.camera.width and sc.camera.height:
        check_frame_size(sc.camera.width, sc.camera.height, opts.max_pixels, ssaa=opts.ssaa)
    check_writable(out_dir)
    t0 = time.time()
    scene = load_scene(scene_path)
    report(progress, "world", 0, 1)
    world = world_from_scene(scene, scale=sc.scale)
    report(progress, "world", 1, 1)
    boxes = collider_info = None
    if sc.props or opts.demo_props:  # static colliders from the reconstruction (cached in the bundle: physics.colliders)
        from .physics.colliders import scene_colliders

        boxes, collider_info = scene_colliders(world, scene, scene_path)
    fixed = [p for p in sc.props if p.position is not None]
    if fixed:  # a prop placed in a wall is a bad input: say so before simulating anything
        import numpy as np

        from .physics.model import check_prop_positions, collider_boxes

        check_prop_positions(fixed, np.array([p.position for p in fixed], np.float64), boxes, world, collider_boxes(world))
    follow = sc.camera.path == "follow"
    if follow:  # the camera walks a window of the capture track: agents start and wander where all of it sees
        mf = metric_frames(scene.cameras.frames, world.scale)
        K, w, h = output_intrinsics(mf, sc.camera.width, sc.camera.height)
        check_frame_size(w, h, opts.max_pixels, ssaa=opts.ssaa)
        plan = plan_follow(world, mf, sc.duration, w, float(K[0, 0]), sc.n_agents)
        spawn = plan.region
    else:
        path = make_camera_path(sc.camera.path, scene.cameras.frames, sc.duration, sc.fps, world.scale, sc.camera.width,
                                sc.camera.height, max_pixels=opts.max_pixels)
        check_frame_size(path.width, path.height, opts.max_pixels, ssaa=opts.ssaa)
        spawn = spawn_region(world, path, sc.n_agents)
    if opts.motion_weights and not Path(opts.motion_weights).is_file():
        raise InputError(f"motion weights {opts.motion_weights} not found")
    sim = run_sim(world, sc, motion=opts.motion, spawn_mask=spawn, progress=progress, motion_weights=opts.motion_weights)
    if follow:
        path = make_camera_path("follow", scene.cameras.frames, sc.duration, sc.fps, world.scale, w, h, sim=sim, world=world,
                                plan=plan)
    props = None
    prop_specs = list(sc.props) + (demo_prop_specs(world, path, sim, sc.seed) if opts.demo_props else [])
    if prop_specs:  # physics post-pass over the finished agent motion (agents are kinematic: props never push them)
        from .physics import simulate_props

        props = simulate_props(world, prop_specs, sim.n_frames, sc.fps, sim=sim, spawn_mask=spawn, seed=sc.seed, boxes=boxes,
                               collider_info=collider_info)
    if opts.lod:  # the render only: the world and colliders above came from the trained anchors
        scene.model = with_lod(scene.model, LODConfig(pixel_error=opts.lod))
    layer = gaussian_layer(scene, world.scale, backend=opts.backend)
    prov = dict(provenance or {})
    prov.setdefault("scene", str(Path(scene_path).resolve()))
    meta = scene.info.metadata or {}
    if meta.get("synthetic") or "SYNTHETIC" in json.dumps(meta):
        prov["synthetic"] = True
    prov["scenario"] = sc.name
    prov["seed"] = sc.seed
    summary = write_outputs(out_dir, layer, world, sim, path, overwrite=opts.overwrite, ssaa=opts.ssaa, provenance=prov,
                            progress=progress, preview_every=opts.preview_every, props=props)
    summary["wall_s"] = round(time.time() - t0, 2)
    return summary


@dataclass
class DemoOptions:
    images: str | None = None  # real photos; None = the SYNTHETIC procedural street
    agents: int = 6
    seconds: float = 6.0
    seed: int = 0
    iterations: int | None = None  # Scaffold-GS iterations (None: DEMO_EPOCHS epochs of the training photos, 600..3000)
    train_minutes: float | None = 10.0  # wall-time cap on training (None: the preset's iterations, however long)
    preset: str = "cpu-fast"
    max_width: int | None = None  # training = video width (None: the synthetic capture's, real photos' up to 640)
    scale: float | None = None
    camera_height: float | None = None
    n_images: int = 30
    capture_width: int = 480
    capture_height: int = 360
    motion: str = "auto"
    fps: float = 30.0
    overwrite: bool = False
    keep_going: bool = True  # reuse finished stages in an existing demo folder
    max_pixels: int | None = None  # frame-size guard for the capture and the video (see render.limits)
    props: bool = True  # a ball kicked across the view and boxes in an agent's way (SimulateOptions.demo_props)
    extra: dict[str, Any] = field(default_factory=dict)


def demo_video_size(opts: DemoOptions, poses_dir: str | os.PathLike, max_width: int = 640) -> tuple[int, int]:
    """The demo trains and renders at one size (no upsampled blur): the synthetic capture's, or real photos' at most max_width.

    `--max-width` sets it explicitly (height follows the photos' aspect ratio).
    """
    from realsim.assets.cameras import load_cameras
    from realsim.recon.dataset import resolve_downscale

    if opts.images is None and opts.max_width is None:
        return opts.capture_width, opts.capture_height  # the undistorted photos are a pixel narrower: same scale
    frames = load_cameras(Path(poses_dir) / "cameras.json").frames
    cap = opts.max_width or (opts.capture_width if opts.images is None else max_width)
    d = resolve_downscale(frames, None, cap)  # the integer factor the trainer uses for this width
    f = frames[0]
    return max(16, 2 * int(f.width / d / 2)), max(16, 2 * int(f.height / d / 2))


def demo_train_config(opts: DemoOptions, width: int, n_images: int):
    """Scaffold-GS for the demo: the preset, trained at the video's width, coarse-to-fine, about DEMO_EPOCHS epochs of the photos.

    Real photos (--images) with the default preset get the `real` preset (its iterations follow the photo count)."""
    from realsim.recon import preset_config

    preset = "real" if opts.images is not None and opts.preset == "cpu-fast" else opts.preset
    iters = opts.iterations or (None if preset == "real" else int(min(3000, max(600, DEMO_EPOCHS * n_images))))
    cfg = preset_config(preset, "scaffold", iters, n_images=n_images)
    if preset in ("cpu-fast", "real"):  # train where the video is rendered (`real` has its own coarse-to-fine schedule)
        cfg.max_width = width
    elif opts.max_width is not None:
        cfg.max_width = opts.max_width
    if preset == "cpu-fast":  # 1/4 then 1/2 resolution early on (cheap iterations)
        cfg.res_schedule = [[0.3, 4], [0.6, 2]]
        cfg.dense_init_stride, cfg.scaffold.n_offsets = DEMO_DENSE_INIT_PX, DEMO_OFFSETS
        cfg.scaffold_strategy.update_depth = DEMO_GROWTH_LEVELS
    cfg.seed = opts.seed
    if opts.train_minutes:
        cfg.max_seconds = 60.0 * opts.train_minutes  # a slow machine stops early with what it has
    return cfg


def demo_poses_options(opts: DemoOptions, synthetic: bool, camera_height: float | None):
    """The demo's `poses` options (also what bench/demo_train.py and bench/demo_stages.py pose with)."""
    from realsim.recon import PosesOptions

    return PosesOptions(max_image_size=max(opts.capture_width, opts.capture_height) if synthetic else 1024, seed=opts.seed,
                        scale=opts.scale, camera_height=camera_height,
                        assumed_camera_height=None if synthetic else HAND_HELD_CAMERA_HEIGHT_M,
                        # the synthetic capture is one walk in photo order that never returns: its 8 neighbours are
                        # all the pairs there are (far pairs only add false matches); see sim/demo_poses.py for why
                        # some seeds folded before (a fast-turning walk, not the textures)
                        matcher="sequential" if synthetic else "auto", loop_closure=not synthetic)


def demo_simulate_options(opts: DemoOptions, poses_dir: str | os.PathLike) -> SimulateOptions:
    """The demo's sim: the `follow` camera at the size the scene was trained at (demo_video_size)."""
    w, h = demo_video_size(opts, poses_dir)
    return SimulateOptions(agents=opts.agents, seconds=opts.seconds, seed=opts.seed, scale=None, motion=opts.motion,
                           fps=opts.fps, camera="follow", width=w, height=h, overwrite=True,
                           preview_every=max(1, int(round(opts.seconds * opts.fps / 6))), max_pixels=opts.max_pixels,
                           demo_props=opts.props)


def run_demo(out_dir: str | os.PathLike, opts: DemoOptions | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """capture (or --images) -> poses -> Scaffold-GS (demo_train_config) -> simulate -> video + streams, in out_dir/{capture,poses,scene,sim}.

    Each finished stage is reused on a re-run (so an interrupted demo resumes), unless overwrite is set. The C++ kernels
    are built (first run on a machine) in the background meanwhile (demo_poses.prebuild_kernels).
    """
    opts = opts or DemoOptions()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RealsimError(f"{out} exists and is not a folder")
    from realsim.render.limits import check_frame_size

    check_frame_size(opts.capture_width, opts.capture_height, opts.max_pixels, ssaa=2, what="capture size")
    check_writable(out)
    if opts.overwrite and out.exists():
        for sub in ("capture", "poses", "scene", "sim", "demo.json"):
            p = out / sub
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    if opts.images is not None and not Path(opts.images).is_dir():
        raise InputError(f"--images {opts.images} is not a folder of photos")
    make_dirs(out)
    builder = prebuild_kernels()
    try:
        return _run_stages(out, opts, progress, builder)
    finally:
        builder.join()  # never exit with a half-built kernel (and its build lock) behind


def _run_stages(out: Path, opts: DemoOptions, progress: ProgressFn | None, builder: threading.Thread) -> dict[str, Any]:
    """run_demo's stages. Timings: wall seconds per stage (NAME_s), CPU seconds of this process in it (NAME_cpu_s, all
    threads), and the kernel build's compilers (kernel_build_cpu_s, child processes: 0 when the kernels were cached)."""
    from realsim.recon import train

    from .capture import CaptureConfig, make_capture

    timings: dict[str, float] = {}
    synthetic = opts.images is None
    children0 = os.times().children_user + os.times().children_system
    # 1. capture
    t, c = time.time(), proc_cpu()
    if synthetic:
        cap = out / "capture"
        if not (cap / "capture.json").is_file():
            make_capture(cap, CaptureConfig(n_images=opts.n_images, width=opts.capture_width, height=opts.capture_height,
                                            seed=opts.seed), overwrite=True, progress=progress)
        images = cap / "images"
        cam_h = opts.camera_height if opts.camera_height is not None else (None if opts.scale else
                                                                           json.loads((cap / "capture.json").read_text())["camera_height"])
    else:
        images = Path(opts.images)  # type: ignore[arg-type]
        if not images.is_dir():
            raise InputError(f"--images {images} is not a folder of photos")
        cam_h = opts.camera_height
    timings["capture_s"] = round(time.time() - t, 2)
    timings["capture_cpu_s"] = round(proc_cpu() - c, 2)
    # 2. poses
    t, c = time.time(), proc_cpu()
    poses_dir = out / "poses"
    if not (poses_dir / "cameras.json").is_file():
        popts = demo_poses_options(opts, synthetic, cam_h)
        gt = out / "capture" / "cameras_gt.json" if synthetic else None
        poses_info = run_demo_poses(images, poses_dir, popts, gt, progress)
    else:
        poses_info = {"reused": True}
        if synthetic:
            from realsim.assets.cameras import load_cameras

            from .capture import pose_error_vs_ground_truth

            poses_info["vs_ground_truth"] = pose_error_vs_ground_truth(load_cameras(poses_dir / "cameras.json"),
                                                                       load_cameras(out / "capture" / "cameras_gt.json"))
    timings["poses_s"] = round(time.time() - t, 2)
    timings["poses_cpu_s"] = round(proc_cpu() - c, 2)
    # 3. Scaffold-GS
    t, c = time.time(), proc_cpu()
    scene_dir = out / "scene"
    if not (scene_dir / "model.safetensors").is_file():
        from realsim.assets.cameras import load_cameras

        cams = load_cameras(poses_dir / "cameras.json")
        n_train = sum(f.split == "train" for f in cams.frames)
        cfg = demo_train_config(opts, demo_video_size(opts, poses_dir)[0], n_train)
        resume = (out / ".scene.train" / "checkpoint.safetensors").is_file() and not opts.overwrite
        # a re-run with other options continues the checkpoint with them (one warning line says which)
        tres = train(poses_dir, scene_dir, cfg, progress=progress, overwrite=True, resume=resume, override_config=True)
        train_info = {"iterations": tres.iterations, **{k: v for k, v in (tres.metrics or {}).items() if isinstance(v, (int, float, str))}}
        if "per_view_psnr" in (tres.metrics or {}):  # interpolated vs extrapolated held-out views (issues 12, 13)
            from realsim.recon.metrics import heldout_split

            train_info.update(heldout_split({k: tres.metrics["per_view_" + k] for k in ("psnr", "ssim")},
                                            [f.name for f in cams.frames if f.split == "test"], [f.name for f in cams.frames]))
    else:
        train_info = {"reused": True}
    timings["train_s"] = round(time.time() - t, 2)
    timings["train_cpu_s"] = round(proc_cpu() - c, 2)
    # 4. simulate + outputs
    t, c = time.time(), proc_cpu()
    sopts = demo_simulate_options(opts, poses_dir)
    prov = {"synthetic": synthetic, "demo": True,
            "input": "SYNTHETIC procedural street (realsim.sim.capture), not real photos" if synthetic else str(images)}
    summary = simulate_scene(scene_dir, out / "sim", sopts, progress=progress, provenance=prov)
    timings["simulate_s"] = round(time.time() - t, 2)
    timings["simulate_cpu_s"] = round(proc_cpu() - c, 2)
    builder.join()
    timings["kernel_build_cpu_s"] = round(os.times().children_user + os.times().children_system - children0, 2)
    timings["total_s"] = round(sum(v for k, v in timings.items() if not k.endswith("cpu_s")), 2)
    timings["total_cpu_s"] = round(sum(v for k, v in timings.items() if k.endswith("cpu_s")), 2)
    result = {"out": str(out), "synthetic": synthetic, "timings": timings, "poses": poses_info, "train": train_info,
              "sim": {k: summary[k] for k in ("frames", "width", "height", "agents", "motion_backend", "metrics",
                                              "render_s_per_frame")},
              "video": str(out / "sim" / "rgb.mp4")}
    write_text_atomic(out / "demo.json", json.dumps(result, indent=1, default=str))
    return result
