"""Shared by the viewer tests: a tiny 3DGS scene bundle with photos, a sim folder of that scene, headless Chromium."""
from __future__ import annotations

import json
import math
import shutil
import socket
from pathlib import Path

import numpy as np
import torch

W, H = 96, 72
DEFAULT_SIZE = (W, H)


def make_scene(root: Path, sfm_points: bool = False, size: tuple[int, int] | None = None, focal: float = 80.0,
               ext: str = ".png", sh_noise: float = 0.0, photos: bool = True) -> Path:
    """A 3DGS bundle (no training): a grey Gaussian ground with coloured blobs, 8 cameras around it, their photos;
    with `sfm_points` also sparse/0/points3D.txt (the ground and a 0.8 m box on it: a world map with an obstacle).
    `sh_noise` > 0 gives the Gaussians view-dependent colour (normal noise of that std on the SH rest coefficients)."""
    W, H = size or DEFAULT_SIZE
    from PIL import Image

    from realsim.assets import CameraFrame, CameraSet, SceneInfo, WorldInfo, save_cameras, save_scene_info
    from realsim.recon.bundle import load_scene, save_model
    from realsim.recon.gs3d import GS3DConfig, GS3DModel
    from realsim.render.paths import look_at

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.linspace(-2, 2, 16), np.linspace(-2, 2, 16))
    ground = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    blobs = rng.normal(size=(120, 3)) * [0.5, 0.5, 0.3] + [0, 0, 0.5]
    xyz = np.concatenate([ground, blobs]).astype(np.float32)
    rgb = np.concatenate([np.full((len(ground), 3), 120), rng.integers(30, 255, size=(len(blobs), 3))])
    model = GS3DModel.from_points(xyz, rgb, GS3DConfig(sh_degree=1, init_opacity=0.9))
    with torch.no_grad():
        model.scales[: len(ground)] = torch.log(torch.tensor([0.2, 0.2, 0.01]))
        model.scales[len(ground):] = math.log(0.12)
        model.shN.normal_(0, sh_noise) if sh_noise > 0 else model.shN.zero_()
    frames = []
    for i in range(8):
        a = 2 * np.pi * i / 8
        p = np.array([4 * np.cos(a), 4 * np.sin(a), 2.0])
        K = np.array([[focal, 0, W / 2], [0, focal, H / 2], [0, 0, 1]])
        frames.append(CameraFrame(f"{i:03d}{ext}", K, look_at(p, np.zeros(3)), W, H, "test" if i % 4 == 0 else "train"))
    save_cameras(root / "cameras.json", CameraSet(frames))
    save_model(root / "model.safetensors", model)
    save_scene_info(root / "scene.json", SceneInfo(WorldInfo(metric=True), "3dgs", model.config.to_dict(),
                                                   {"synthetic": True}))
    if sfm_points:
        gx, gy = np.meshgrid(np.linspace(-3, 3, 61), np.linspace(-3, 3, 61))
        pts = [np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)]
        bx, by, bz = np.meshgrid(np.linspace(0.8, 1.6, 9), np.linspace(0.8, 1.6, 9), np.linspace(0.1, 0.8, 8))
        pts.append(np.stack([bx.ravel(), by.ravel(), bz.ravel()], 1))
        P = np.concatenate(pts)
        (root / "sparse" / "0").mkdir(parents=True, exist_ok=True)
        (root / "sparse" / "0" / "points3D.txt").write_text(
            "".join(f"{i + 1} {x:.4f} {y:.4f} {z:.4f} 128 128 128 0.5\n" for i, (x, y, z) in enumerate(P)))
    if not photos:
        return root
    scene = load_scene(root)
    (root / "images").mkdir(exist_ok=True)
    for f in frames:  # the "photos" are the model's own renders
        out = scene.render(f.viewmat, f.K, W, H)["rgb"].numpy()
        Image.fromarray((out * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(root / "images" / f.name)
    return root


def make_sim(out: Path, scene: Path, frames: int = 30, agents: int = 2, props: bool = False) -> Path:
    """A sim output folder in the layout `realsim simulate` writes (sim.json, trajectories.json, motion.safetensors):
    stick figures walking straight lines across the ground, +x for agent 0 and +y for agent 1. With `props`, also a
    props.json (sim/physics format): a 0.2 m ball rolling 2 m along -y, and a 0.4 m box turning 90 degrees about z."""
    from realsim.assets.scene import save_tensors

    out.mkdir(parents=True, exist_ok=True)
    parents = [-1, 0, 1, 0, 3, 0, 5]  # pelvis, l-knee, l-foot, r-knee, r-foot, neck, head
    names = ["pelvis", "lknee", "lfoot", "rknee", "rfoot", "neck", "head"]
    body = np.array([[0, 0, 0.9], [0.1, 0, 0.5], [0.1, 0, 0.05], [-0.1, 0, 0.5], [-0.1, 0, 0.05], [0, 0, 1.5],
                     [0, 0, 1.7]])
    T = frames
    s = np.linspace(-1.5, 1.5, T)
    root = np.zeros((T, agents, 3))
    root[:, 0, 0] = s
    if agents > 1:
        root[:, 1, 1] = s
        root[:, 1, 0] = 0.5
    root[..., 2] = 0.9
    joints = root[:, :, None, :] + (body - body[0])[None, None]
    fps = 10.0
    looks = [{"shirt": [0.9, 0.1, 0.1]}, {"shirt": [0.1, 0.2, 0.9]}]
    traj = {"fps": fps, "frames": T, "world_up": [0, 0, 1], "units": "metres",
            "agents": [{"id": a, "look": looks[a % 2], "root": root[:, a].tolist()} for a in range(agents)]}
    (out / "trajectories.json").write_text(json.dumps(traj))
    save_tensors(out / "motion.safetensors", {"joints": torch.tensor(joints, dtype=torch.float32),
                                              "root": torch.tensor(root, dtype=torch.float32),
                                              "heading": torch.zeros(T, agents)},
                 {"skeleton": json.dumps({"names": names, "parents": parents}), "fps": str(fps)})
    if props:
        u = np.linspace(0, 1, T)
        ball = np.c_[np.full(T, -1.0), 1.0 - 2.0 * u, np.full(T, 0.2)]
        ang = 0.5 * np.pi * u
        box_q = np.c_[np.cos(ang / 2), np.zeros(T), np.zeros(T), np.sin(ang / 2)]
        pj = {"fps": fps, "frames": T, "units": "metres", "quat_order": "wxyz", "contacts": [], "props": [
            {"id": 0, "shape": "sphere", "size": [0.2], "color": [0.9, 0.5, 0.1], "position": ball.tolist(),
             "quat": [[1.0, 0.0, 0.0, 0.0]] * T, "velocity": [[0.0, -2.0 * fps / (T - 1), 0.0]] * T},
            {"id": 1, "shape": "box", "size": [0.4, 0.4, 0.4], "color": [0.2, 0.7, 0.3],
             "position": [[1.0, -1.0, 0.2]] * T, "quat": box_q.tolist(), "velocity": [[0.0, 0.0, 0.0]] * T}]}
        (out / "props.json").write_text(json.dumps(pj))
    (out / "sim.json").write_text(json.dumps({"frames": T, "fps": fps, "agents": agents, "world": {"scale": 1.0},
                                              "provenance": {"scene": str(Path(scene).resolve())}}))
    return out


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) from the distribution's packages, or None."""
    for b in ("chromium", "chromium-browser"):
        exe = shutil.which(b)
        drv = shutil.which("chromedriver")
        if exe and drv:
            return exe, drv
    return None


def open_browser(url: str, user_dir: Path, width: int = 800, height: int = 600):
    """Headless Chromium (software WebGL through SwiftShader) on `url`, driven by selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    exe, drv = chromium_paths()
    o = webdriver.ChromeOptions()
    o.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-dev-shm-usage", f"--user-data-dir={user_dir}", f"--window-size={width},{height}"):
        o.add_argument(a)
    d = webdriver.Chrome(options=o, service=Service(drv))
    d.set_page_load_timeout(60)
    d.get(url)
    return d


def canvas_rect(driver) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the page's 3D view (its largest canvas) in screenshot pixels: its CSS box. Not the
    size the browser reports to the server (camera.image_width/height): that is the drawing buffer, which viser's
    adaptive DPR shrinks when software WebGL draws slowly (a loaded machine)."""
    r = driver.execute_script(
        "const c = [...document.querySelectorAll('canvas')].sort((a, b) => b.clientWidth * b.clientHeight - "
        "a.clientWidth * a.clientHeight)[0]; const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height];")
    x, y, w, h = (int(round(v)) for v in r)
    return x, y, w, h


def screenshot(driver) -> np.ndarray:
    """The page as uint8 [H,W,3]."""
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"))
