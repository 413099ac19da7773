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

from viewer_helpers import chromium_paths, free_port, make_scene, open_browser, screenshot

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


@pytest.mark.skipif(chromium_paths() is None, reason="no chromium + chromedriver on PATH (bash .ci/install.sh)")
def test_ns_viewer_draws_a_realsim_scene(tiny):
    """ns-viewer on a converted realsim bundle, in headless Chromium: the canvas shows the scene's render, with the
    camera frustums (and their photos) off so only the render can draw the scene there."""
    pytest.importorskip("selenium")
    root, scene, _work = tiny
    config = root / "converted" / "realsim" / "realsim-3dgs" / "bundle" / "config.yml"
    if not config.is_file():
        config = _convert(scene, root / "converted")
    port = free_port()
    log = open(root / "ns-viewer.log", "w")
    proc = subprocess.Popen([str(NS / "ns-viewer"), "--load-config", str(config), "--viewer.websocket-port", str(port),
                             "--viewer.websocket-host", "127.0.0.1", "--viewer.max-num-display-images", "0"],
                            cwd=root, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    driver = None
    try:
        t0 = time.monotonic()
        while not _serving(port):
            assert proc.poll() is None, (root / "ns-viewer.log").read_text()[-3000:]
            assert time.monotonic() - t0 < 240, "ns-viewer did not start"
            time.sleep(1.0)
        assert "0.0.0.0" not in (root / "ns-viewer.log").read_text(), "ns-viewer listens beyond 127.0.0.1"
        driver = open_browser(f"http://127.0.0.1:{port}", root / "chromium-profile", 800, 600)
        t0 = time.monotonic()
        while True:  # the render arrives after the page has connected and the model has rendered the view
            img = screenshot(driver).astype(np.float32) / 255.0
            can = img[60:, : img.shape[1] - 330]  # below the title bar, left of the control panel
            ground = (np.abs(can - 120 / 255).max(-1) < 0.1).mean()
            if ground > 0.3 or time.monotonic() - t0 > 90:
                break
            time.sleep(2.0)
        from PIL import Image

        Image.fromarray((img * 255).astype(np.uint8)).save(root / "ns_viewer.png")
        # viser's empty canvas is near white: the default view (0.3 m from the origin, looking at it) sees the scene's
        # grey ground (RGB 120) in realsim's render
        assert ground > 0.3, f"no realsim render on the ns-viewer canvas ({ground:.3f} of it shows the scene's ground)"
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
