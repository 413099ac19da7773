"""`realsim train ... --view`: the scene in the browser while it trains, with the loss and the held-out PSNR.

The trainer knows nothing of this: `train(..., on_step=viewer.on_step)` hands it the model after every iteration, and the
viewer re-sends the splats at most every `every_s` seconds (3DGS as stored; Scaffold baked from a few training cameras,
the way `export` bakes it). The update runs in the training thread, so the model cannot change under it.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError

from .app import LOCAL_HOSTS, add_frustums, check_port
from .data import SplatArrays, camera_views_of, cloud_to_splat_arrays, scene_extent

log = logging.getLogger("realsim.cli.viewer")


@dataclass
class TrainSnapshot:
    """What the viewer showed after one update (kept for the CLI summary and tests)."""

    step: int
    splats: int
    loss: float
    eval_psnr: float
    text: str
    centers_mean: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(3))


class TrainingViewer:
    """A viser server showing the training cameras and the model's current splats, plus a stats panel."""

    def __init__(self, cameras: Any, root: str | Path, host: str = "127.0.0.1", port: int = 7007,
                 every_s: float = 2.0, bake_views: int = 6) -> None:
        check_port(host, port)
        self.cameras = cameras  # CameraSet of the training source
        self.root = Path(root)
        self.host, self.port = host, int(port)
        self.every_s = float(every_s)
        self.bake_views = int(bake_views)
        self.views = camera_views_of(cameras, root)
        self.server: Any = None
        self.h: dict[str, Any] = {}
        self.snapshots: list[TrainSnapshot] = []
        self._last = -math.inf
        self.update_seconds = 0.0  # time the updates took (spent in the training thread)

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        import viser

        if self.host not in LOCAL_HOSTS:
            log.warning(f"serving on {self.host}:{self.port}: anyone who can reach this machine there can see the scene")
        with contextlib.redirect_stdout(sys.stderr):  # viser's banner: stdout stays the command's (--json) output
            server = viser.ViserServer(host=self.host, port=self.port, verbose=False)
        if server.get_port() != self.port:
            server.stop()
            raise InputError(f"port {self.port} on {self.host} is in use (pick another with --port)")
        self.server = server
        server.gui.configure_theme(show_logo=False, dark_mode=False)
        server.scene.set_up_direction("+z")
        pos = np.array([v.position for v in self.views]) if self.views else np.zeros((1, 3))
        add_frustums(server.scene, self.views, scene_extent(pos) * 2.0, self.h)
        with server.gui.add_folder("Training"):
            self.h["stats"] = server.gui.add_markdown("starting ...")
            self.h["progress"] = server.gui.add_progress_bar(0.0)
            cb = server.gui.add_checkbox("Training cameras", True)

            @cb.on_update
            def _(_ev) -> None:
                for k in [k for k in self.h if k.startswith("cam")]:
                    self.h[k].visible = cb.value

        if self.views:
            @server.on_client_connect
            def _(client: Any) -> None:
                v = self.views[0]
                client.camera.fov = v.fov
                client.camera.wxyz = v.wxyz
                client.camera.position = v.position

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.redirect_stdout(sys.stderr):
                self.server.stop()
            self.server = None

    def serve(self, seconds: float | None = None) -> None:
        """Keep serving the last state: `seconds`, or until Ctrl-C when None."""
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))

    # ------------------------------------------------------------------ updates
    def splats_of(self, model: Any) -> SplatArrays:
        """The model's current plain Gaussians (Scaffold: baked from up to `bake_views` training cameras)."""
        import torch

        from realsim.assets import CameraSet
        from realsim.recon.export import ExportConfig, model_to_cloud

        frames = sorted(self.cameras.split("train") or self.cameras.frames, key=lambda f: f.name)
        if len(frames) > self.bake_views:
            frames = [frames[i] for i in np.linspace(0, len(frames) - 1, self.bake_views).round().astype(int)]
        with torch.no_grad():
            cloud, info = model_to_cloud(model, CameraSet(frames, self.cameras.images_dir),
                                         ExportConfig(sh_degree=0, views_between=0))
        return cloud_to_splat_arrays(cloud, info)

    def on_step(self, step: int, model: Any, metrics: dict[str, Any], force: bool = False) -> None:
        """The trainer's per-iteration hook: stats every call, splats when `every_s` passed (or forced, or last step)."""
        n = int(metrics.get("iterations") or 0)
        loss = float(metrics.get("loss", math.nan))
        ev = float(metrics.get("eval_psnr", math.nan))
        psnr_txt = f"{ev:.2f} dB" if math.isfinite(ev) else "not yet"
        counts = ", ".join(f"{metrics[k]} {k}" for k in ("anchors", "gaussians") if k in metrics)
        text = (f"**step {step} / {n}**  \nloss {loss:.4f}  \nheld-out PSNR {psnr_txt}"
                + (f"  \n{counts}" if counts else ""))
        if self.server is not None:
            self.h["stats"].content = text
            self.h["progress"].value = 100.0 * step / max(n, 1)
        now = time.monotonic()
        if not (force or step >= n or now - self._last >= self.every_s):
            return
        self._last = now
        t0 = time.perf_counter()
        try:
            sp = self.splats_of(model)
        except InputError as e:  # nothing visible yet
            log.debug("viewer update skipped: %s", e)
            return
        if self.server is not None:
            self.h["splats"] = self.server.scene.add_gaussian_splats(
                "/scene/splats", centers=sp.centers, covariances=sp.covariances, rgbs=sp.rgbs, opacities=sp.opacities)
        self.update_seconds += time.perf_counter() - t0
        self.snapshots.append(TrainSnapshot(step, len(sp), loss, ev, text, sp.centers.mean(0) if len(sp) else np.zeros(3)))

    def finish(self, model: Any, metrics: dict[str, Any], step: int) -> None:
        """The final state: the trained model's splats and the test-set PSNR over all held-out views."""
        m = {"iterations": step, "loss": self.snapshots[-1].loss if self.snapshots else math.nan,
             "eval_psnr": float(metrics.get("psnr", math.nan)), **{k: metrics[k] for k in ("anchors", "gaussians")
                                                                    if k in metrics}}
        self.on_step(step, model, m, force=True)
        if self.server is not None and metrics.get("n_views"):
            self.h["stats"].content += f"  \n(final: PSNR over {metrics['n_views']} held-out views)"
