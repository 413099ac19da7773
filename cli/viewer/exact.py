"""Exact mode of `realsim view`: realsim's own render of each browser's view, sent as its background image."""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from .data import intrinsics_for, viewmat_from_c2w

log = logging.getLogger("realsim.cli.viewer")


class ExactMixin:
    """ViewerApp's exact mode (needs self.scene, self.opts, self._exact_cv, self._exact_pending, self._stop)."""

    exact_last: tuple[np.ndarray, float, int, int] | None = None  # (viewmat, fov, W, H) of the last frame sent

    def _request_exact(self, client: Any) -> None:
        with self._exact_cv:
            self._exact_pending[client.client_id] = (client, time.monotonic())
            self._exact_cv.notify_all()

    def render_view(self, viewmat: np.ndarray, fov: float, width: int, height: int,
                    background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
        """realsim's own render (uint8 [H,W,3]) of an OpenCV camera with vertical fov (radians) at width x height."""
        K = intrinsics_for(fov, width, height)
        out = self.scene.render(viewmat, K, width, height, backend=self.opts.backend, background=background)
        return (out["rgb"].numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)

    def _exact_loop(self) -> None:
        refine: dict[int, Any] = {}  # clients whose last exact frame was below full resolution
        while not self._stop.is_set():
            with self._exact_cv:
                if not self._exact_pending and not refine:
                    self._exact_cv.wait(0.5)
                    continue
                if self._exact_pending:
                    cid, (client, _) = next(iter(self._exact_pending.items()))
                    del self._exact_pending[cid]
                    full = False
                else:
                    cid, client = next(iter(refine.items()))
                    del refine[cid]
                    full = True
            if not self.h["exact"].value:
                continue
            try:
                img, W0 = self.exact_image(client.camera, full)
                if img.shape[1] < W0:
                    refine[cid] = client
                client.scene.set_background_image(img, format="jpeg")
                self.exact_renders += 1
                self.exact_last = self._exact_cam  # the camera of the frame just sent (what the page should show)
            except Exception as e:  # a client that went away, a render that failed: keep serving
                log.debug("exact render failed: %s", e)

    def exact_image(self, cam: Any, full: bool = False) -> tuple[np.ndarray, int]:
        """The exact mode's frame of a viser camera (wxyz, position, fov, image size): realsim's render at the adaptive
        fraction of the canvas (full size when `full`), and the canvas width. Updates the adaptive scale."""
        W0, H0 = max(16, int(cam.image_width or 640)), max(16, int(cam.image_height or 480))
        s = 1.0 if full else self.exact_scale
        W, H = max(16, int(W0 * s)), max(16, int(H0 * s))
        t0 = time.perf_counter()
        viewmat, fov = viewmat_from_c2w(cam.wxyz, cam.position), float(cam.fov)  # one read: the browser may move on
        self._exact_cam = (viewmat, fov, W, H)
        img = self.render_view(viewmat, fov, W, H)
        dt = time.perf_counter() - t0
        if not full:  # adapt: aim at exact_target_s per frame while the view moves
            self.exact_scale = float(np.clip(s * math.sqrt(self.opts.exact_target_s / max(dt, 1e-3)), 0.1, 1.0))
        return img, W0
