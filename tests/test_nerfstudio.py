"""The nerfstudio plugin (recon/ns_*.py) end to end in `.venv-ns`: `ns-train realsim-scaffold` on a tiny poses WORKDIR,
`ns-render` of one frame, the bundle -> nerfstudio converter, and `ns-viewer` on a realsim scene in headless Chromium.

Skipped, saying why, without `.venv-ns` (`bash .ci/install.sh --nerfstudio` makes it). The nerfstudio commands run as
subprocesses of that venv; this file runs in `.venv` and reads their outputs with realsim."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from viewer_helpers import canvas_rect, chromium_paths, free_port, make_scene, open_browser, screenshot

ROOT = Path(__file__).resolve().parents[1]
# REALSIM_NS_VENV: another nerfstudio venv than .venv-ns (e.g. one being tried out)
NS = Path(os.environ.get("REALSIM_NS_VENV", ROOT / ".venv-ns")) / "bin"
# .venv-ns layered on .venv (its torch and kernels); an older self-contained one (torch 2.14) is not used
_LAYERED = any(NS.parent.glob("lib/python*/site-packages/_realsim_venv.pth"))
pytestmark = pytest.mark.skipif(not ((NS / "ns-train").exists() and _LAYERED),
                                reason="no .venv-ns with nerfstudio layered on .venv: bash .ci/install.sh --nerfstudio")


def _env() -> dict[str, str]:
    # .venv-ns runs .venv's torch (.ci/install.sh --nerfstudio layers it over .venv): the kernels this suite built load
    # there as they are, from the same TORCH_EXTENSIONS_DIR
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    p = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, args[:2]))} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}"
    return p.stdout + p.stderr


def _workdir(scene: Path, out: Path) -> Path:
    """A poses WORKDIR as `realsim poses` writes it for nerfstudio: images/, cameras.json, transforms.json (with the
    train/test split) and sparse_pc.ply (here the scene's Gaussian centres with their colours)."""
    from realsim.assets.cameras import load_cameras
    from realsim.recon.bundle import load_scene
    from realsim.recon.gs3d import SH_C0
    from realsim.recon.nerfstudio import write_points_ply, write_transforms

    out.mkdir(parents=True)
    (out / "images").symlink_to(scene / "images")
    (out / "cameras.json").write_text((scene / "cameras.json").read_text())
    m = load_scene(scene).model
    rgb = ((m.sh0[:, 0].detach() * SH_C0 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    write_points_ply(out / "sparse_pc.ply", m.means.detach().numpy(), rgb)
    write_transforms(out / "transforms.json", load_cameras(out / "cameras.json"), "sparse_pc.ply")
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ns")
    scene = make_scene(root / "scene")
    return root, scene, _workdir(scene, root / "work")


def _test_views(scene: Path):
    from PIL import Image

    from realsim.assets.cameras import load_cameras

    cams = load_cameras(scene / "cameras.json")
    return [(f, np.asarray(Image.open(scene / "images" / f.name).convert("RGB"), np.float32) / 255.0)
            for f in cams.frames if f.split == "test"]


def _psnr(model, views) -> float:
    from realsim.recon import render_model

    errs = []
    for f, img in views:
        out = render_model(model, torch.tensor(f.viewmat, dtype=torch.float32), torch.tensor(f.K, dtype=torch.float32),
                           f.width, f.height)["rgb"].numpy()
        errs.append(((out - img) ** 2).mean())
    return float(-10 * np.log10(np.mean(errs)))


def _ns_render_test_views(config: Path, root: Path, name: str) -> dict[str, np.ndarray]:
    """`ns-render dataset` of the held-out cameras -> {image name: the PNG it wrote, [H,W,3] in [0,1]}.
    (`ns-render camera-path` does the same along a camera_path.json, but needs ffmpeg on PATH even for images.)"""
    from PIL import Image

    out = root / f"{name}_render"
    _run([str(NS / "ns-render"), "dataset", "--load-config", str(config), "--split", "test", "--rendered-output-names",
          "rgb", "--image-format", "png", "--output-path", str(out)], root)
    pngs = sorted((out / "test" / "rgb").rglob("*.png"))
    assert pngs, f"ns-render wrote no images under {out}"
    return {p.stem: np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0 for p in pngs}


def test_ns_train_realsim_scaffold_learns_and_renders(tiny):
    """ns-train realsim-scaffold on the WORKDIR: its checkpoint is a realsim Scaffold model that learned the held-out
    views (PSNR well above the untrained model's), and ns-render draws exactly what realsim renders from it."""
    from realsim.recon.bundle import build_model
    from realsim.recon.nerfstudio import read_points_ply
    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

    root, scene, work = tiny
    n = 100
    t0 = time.monotonic()
    _run([str(NS / "ns-train"), "realsim-scaffold", "--data", str(work), "--output-dir", str(root / "outputs"),
          "--experiment-name", "tiny", "--timestamp", "run", "--max-num-iterations", str(n), "--steps-per-save", str(n),
          "--vis", "tensorboard", "--machine.device-type", "cpu", "--pipeline.model.lr-scale", "2.0"], root, timeout=600)
    train_s = time.monotonic() - t0
    base = root / "outputs" / "tiny" / "realsim-scaffold" / "run"
    ckpts = sorted((base / "nerfstudio_models").glob("step-*.ckpt"))
    assert (base / "config.yml").is_file() and ckpts, f"ns-train left no config / checkpoint in {base}"
    state = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    tensors = {k[len("_model.rs."):]: v for k, v in state["pipeline"].items() if k.startswith("_model.rs.")}
    cfg = ScaffoldConfig().to_dict()
    model = build_model("scaffold", cfg, tensors, "ns checkpoint")
    xyz, _ = read_points_ply(work / "sparse_pc.ply")
    untrained = ScaffoldModel.from_points(xyz, ScaffoldConfig()).eval()
    views = _test_views(scene)
    p_trained, p_untrained = _psnr(model, views), _psnr(untrained, views)
    print(f"ns-train {n} iterations: {train_s:.1f} s, held-out PSNR {p_untrained:.2f} -> {p_trained:.2f} dB")
    assert p_trained > p_untrained + 4.0 and p_trained > 24.0, (p_untrained, p_trained)

    from realsim.recon import render_model

    ns = _ns_render_test_views(base / "config.yml", root, "trained")
    assert sorted(ns) == sorted(Path(f.name).stem for f, _ in views)
    for f, _img in views:
        ref = render_model(model, torch.tensor(f.viewmat, dtype=torch.float32), torch.tensor(f.K, dtype=torch.float32),
                           f.width, f.height)["rgb"].numpy()
        got = ns[Path(f.name).stem]
        assert got.shape == ref.shape
        err = float(np.abs(got - ref).mean())
        assert err < 2.0 / 255, f"ns-render differs from realsim's render of the same checkpoint by {err:.4f}"


def _convert(scene: Path, out: Path) -> Path:
    txt = _run([str(NS / "python"), "-m", "realsim.recon.ns_convert", str(scene), "-o", str(out)], out.parent)
    return Path(next(ln.strip() for ln in txt.splitlines() if ln.strip().endswith("config.yml")))


def test_bundle_converter_renders_the_scene_without_training(tiny):
    """A realsim 3DGS bundle -> nerfstudio output folder: ns-render of a held-out camera equals the scene's photo
    (the photos are the bundle's own renders)."""
    root, scene, _work = tiny
    config = _convert(scene, root / "converted")
    assert config.name == "config.yml" and config.is_file()
    ns = _ns_render_test_views(config, root, "converted")
    for f, img in _test_views(scene):
        err = float(np.abs(ns[Path(f.name).stem] - img).mean())
        assert err < 2.0 / 255, f"ns-render of the converted bundle differs from the scene by {err:.4f}"


def test_converted_bundle_is_drawn_with_its_trained_widening(tiny):
    """A bundle trained with another 2-D widening (TrainConfig.eps2d, as the `real` preset's 0.1) renders in nerfstudio
    as realsim draws it."""
    import json
    import shutil

    from realsim.recon.bundle import load_scene

    root, scene, _work = tiny
    narrow = root / "scene_eps01"
    shutil.copytree(scene, narrow, symlinks=True)
    info = json.loads((narrow / "scene.json").read_text())
    info.setdefault("metadata", {}).setdefault("train", {}).setdefault("config", {})["eps2d"] = 0.1
    (narrow / "scene.json").write_text(json.dumps(info))
    sc = load_scene(narrow)
    assert sc.train_eps2d() == 0.1
    config = _convert(narrow, root / "converted_eps01")
    assert "eps2d: 0.1" in config.read_text()
    ns = _ns_render_test_views(config, root, "converted_eps01")
    for f, _img in _test_views(narrow):
        ref = sc.render(f.viewmat, f.K, f.width, f.height)["rgb"].numpy()
        err = float(np.abs(ns[Path(f.name).stem] - ref).mean())
        assert err < 2.0 / 255, f"ns-render of the converted bundle differs from realsim's render by {err:.4f}"


def test_converter_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    p = subprocess.run([str(NS / "python"), "-m", "realsim.recon.ns_convert", str(tmp_path / "x"), "-o",
                        str(tmp_path / "o")], env=_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error")]  # (torch 2.14 may add a FutureWarning)
    assert len(errors) == 1 and "scene.json not found" in errors[0], p.stderr


def _serving(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# ns-viewer with the browser's view put at a realsim camera when the page connects, and each view the page reports
# written to $REALSIM_TEST_NS_VIEW's "out" (JSON) for the test to render the same camera with realsim
_NS_VIEWER_AT = r"""
import json, os, sys
import numpy as np
import viser.transforms as vtf
from nerfstudio.viewer import viewer as V

want = json.loads(os.environ["REALSIM_TEST_NS_VIEW"])
handle_new_client = V.Viewer.handle_new_client


def at_camera(self, client):
    handle_new_client(self, client)

    @client.camera.on_update
    def _(cam):
        with open(want["out"] + ".tmp", "w") as f:
            json.dump({"wxyz": list(map(float, cam.wxyz)), "position": list(map(float, cam.position)),
                       "fov": float(cam.fov), "aspect": float(cam.aspect), "scale": V.VISER_NERFSTUDIO_SCALE_RATIO}, f)
        os.replace(want["out"] + ".tmp", want["out"])

    c2w = np.array(want["c2w"])  # OpenCV camera-to-world in nerfstudio's world (= realsim's), viser's scale below
    R, p = c2w[:, :3], c2w[:, 3] * V.VISER_NERFSTUDIO_SCALE_RATIO
    with client.atomic():
        client.camera.fov = want["fov"]
        client.camera.up_direction = -R[:, 1]
        client.camera.position = p
        client.camera.look_at = p + R[:, 2] * 10.0
        client.camera.wxyz = vtf.SO3.from_matrix(R).wxyz
        client.camera.position = p


V.Viewer.handle_new_client = at_camera
from nerfstudio.scripts.viewer.run_viewer import entrypoint

sys.argv[0] = "ns-viewer"
entrypoint()
"""


def _reported_view(path: Path) -> tuple[np.ndarray, float, float] | None:
    """The last view the ns-viewer page reported: (OpenCV world-to-camera in realsim's world, vertical fov, aspect)."""
    import json

    from realsim.cli.viewer.data import viewmat_from_c2w

    try:
        v = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return viewmat_from_c2w(np.array(v["wxyz"]), np.array(v["position"]) / v["scale"]), float(v["fov"]), float(v["aspect"])


@pytest.mark.skipif(chromium_paths() is None, reason="no chromium + chromedriver on PATH (bash .ci/install.sh)")
def test_ns_viewer_draws_a_realsim_scene(tiny):
    """ns-viewer on a converted realsim bundle, in headless Chromium, its view put at a chosen camera when the page
    connects: the canvas shows realsim's own render of the view the page reports, within a loose tolerance (nerfstudio
    renders at most 512 px wide, sends a JPEG and the page scales it: 0.003 mean abs error measured; aimed 0.3 m to the
    side gives 0.057, a fov 0.1 rad off 0.041). The camera frustums are off, so only the render can draw the scene."""
    pytest.importorskip("selenium")
    import json

    from realsim.cli.viewer.data import intrinsics_for
    from realsim.recon.bundle import load_scene
    from realsim.render.paths import look_at

    root, scene, _work = tiny
    config = root / "converted" / "realsim" / "realsim-3dgs" / "bundle" / "config.yml"
    if not config.is_file():
        config = _convert(scene, root / "converted")
    target = look_at(np.array([3.0, 1.5, 1.2]), np.array([0.0, 0.0, 0.4]))  # OpenCV world-to-camera, a view no camera has
    views = root / "ns-view.json"
    port = free_port()
    log = open(root / "ns-viewer.log", "w")
    env = _env()
    env["REALSIM_TEST_NS_VIEW"] = json.dumps({"c2w": np.linalg.inv(target)[:3].tolist(), "fov": 0.9, "out": str(views)})
    proc = subprocess.Popen([str(NS / "python"), "-c", _NS_VIEWER_AT, "--load-config", str(config),
                             "--viewer.websocket-port", str(port), "--viewer.websocket-host", "127.0.0.1",
                             "--viewer.max-num-display-images", "0"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    driver = None
    try:
        t0 = time.monotonic()
        while not _serving(port):
            assert proc.poll() is None, (root / "ns-viewer.log").read_text()[-3000:]
            assert time.monotonic() - t0 < 240, "ns-viewer did not start"
            time.sleep(1.0)
        assert "0.0.0.0" not in (root / "ns-viewer.log").read_text(), "ns-viewer listens beyond 127.0.0.1"
        driver = open_browser(f"http://127.0.0.1:{port}", root / "chromium-profile", 800, 600)
        sc = load_scene(scene)
        t0 = time.monotonic()
        while True:  # the page reports the view it was put at; nerfstudio renders it (small while moving, then full)
            time.sleep(2.0)
            rep = _reported_view(views)
            x, y, w, h = canvas_rect(driver)
            if rep is not None:  # the view fills the part of the canvas left of the control panel, of the aspect reported
                w = min(w, int(round(rep[2] * h)))
            img = screenshot(driver).astype(np.float32) / 255.0
            can = img[y: y + h, x: x + w]
            h, w = can.shape[:2]  # the part inside the window
            mask = np.ones((h, w), bool)
            mask[-90:, :90] = False  # nerfstudio's axes gizmo, bottom left
            err = corr = float("nan")
            if rep is not None and np.allclose(rep[0], target, atol=1e-3):
                ref = sc.render(rep[0], intrinsics_for(rep[1], w, h), w, h, background=(0.0, 0.0, 0.0))["rgb"].numpy()
                err = float(np.abs(can - ref)[mask].mean())
                corr = float(np.corrcoef(can[mask].mean(-1), ref[mask].mean(-1))[0, 1])
                if err < 0.03 and corr > 0.95:
                    break
            if time.monotonic() - t0 > 120:
                break
        from PIL import Image

        Image.fromarray((img * 255).astype(np.uint8)).save(root / "ns_viewer.png")
        assert rep is not None and np.allclose(rep[0], target, atol=1e-3), \
            f"the ns-viewer page never reported the view it was put at: {rep}"
        assert can[mask].std() > 0.05, "the ns-viewer canvas is blank"
        assert err < 0.03, (f"the ns-viewer canvas (page box {(x, y, w, h)}) differs from realsim's render of its view "
                            f"by {err:.3f} mean abs error")
        assert corr > 0.95, f"the ns-viewer canvas correlates {corr:.2f} with realsim's render of its view"
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
