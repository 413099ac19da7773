"""The `realsim view` server: a viser app showing a scene, its cameras, its world map and a simulation's agents.

Simulation panel, exact mode and camera-path editor are mixins (panels_sim.py, exact.py, path_editor.py).
Use from Python (tests do): `app = ViewerApp(ViewerOptions(scene=...)); app.start(); ...; app.stop()`.
"""
from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError

from .data import (CameraView, SimPlayback, SplatArrays, c2w_from_viewmat, camera_views, load_sim,
                   scene_extent, scene_splats, world_points)
from .exact import ExactMixin
from .panels_sim import SimPanelMixin
from .path_editor import PathEditorMixin, fov_of

__all__ = ["ViewerApp", "ViewerOptions", "check_port", "add_frustums", "fov_of", "LOCAL_HOSTS"]

log = logging.getLogger("realsim.cli.viewer")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ViewerOptions:
    scene: Path
    sim: Path | None = None
    host: str = "127.0.0.1"
    port: int = 7007
    path_out: Path = Path("camera_path.json")
    backend: str = "auto"
    world: bool = True  # build the ground / walkable / obstacle map (needs a metric scene or a sim's scale)
    exact_target_s: float = 0.25  # the exact mode aims at one render per this many seconds while the view moves
    views_between: int = 1  # Scaffold bake: extra viewpoints between cameras (export uses 2)


def check_port(host: str, port: int) -> None:
    """InputError when host:port cannot be bound (in use, or not an address of this machine)."""
    if not 0 < port < 65536:
        raise InputError(f"--port must be 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError(f"cannot resolve --host {host!r}: {e.strerror}") from None
    fam, _, _, _, addr = infos[0]
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind(addr)
    except OSError as e:
        if e.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise InputError(f"port {port} on {host} is in use (pick another with --port)") from None
        raise InputError(f"cannot serve on {host}:{port}: {e.strerror}") from None
    finally:
        s.close()


def add_frustums(sc: Any, cameras: list[CameraView], extent: float, h: dict[str, Any]) -> None:
    """Training cameras as frustums with their photos (orange: test split) into viser scene `sc`, handles in h["camI"]."""
    fr_scale = 0.04 * extent
    if len(cameras) > 1:  # no bigger than the spacing of the cameras
        pos = np.array([c.position for c in cameras])
        dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(len(pos)) * 1e9
        fr_scale = float(min(fr_scale, 0.6 * np.median(dist.min(1))))
    for i, c in enumerate(cameras):
        h[f"cam{i}"] = sc.add_camera_frustum(
            f"/cameras/{i:04d}", fov=c.fov, aspect=c.aspect, scale=fr_scale, thickness=0.015 * fr_scale,
            color=(230, 120, 20) if c.split == "test" else (30, 90, 220), image=c.image, format="jpeg",
            wxyz=c.wxyz, position=c.position)


class ViewerApp(SimPanelMixin, ExactMixin, PathEditorMixin):
    """Loads everything first (bad input fails before the server starts), then serves it with viser."""

    def __init__(self, opts: ViewerOptions, progress=None) -> None:
        from realsim.recon.bundle import load_scene

        self.opts = opts
        check_port(opts.host, opts.port)
        self.scene = load_scene(opts.scene)
        self.sim: SimPlayback | None = load_sim(opts.sim, self.scene.root) if opts.sim is not None else None
        self.splats: SplatArrays = scene_splats(self.scene, opts.views_between, progress)
        self.cameras: list[CameraView] = camera_views(self.scene)
        self.world = None
        self.world_note = ""
        if opts.world:
            self._build_world()
        self.extent = scene_extent(self.splats.centers)
        self.server: Any = None
        self.frame = 0
        self.playing = False
        self.speed = 1.0
        self.keyframes: list[tuple[np.ndarray, float]] = []  # (OpenCV world-to-camera, vertical fov radians)
        self.render_proc: subprocess.Popen | None = None  # the `realsim render` the editor started
        self.render_log: Path | None = None
        self.previewing = threading.Event()  # set while a camera-path preview plays
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._exact_pending: dict[int, Any] = {}
        self._exact_cv = threading.Condition()
        self.exact_scale = 0.5  # fraction of the browser's canvas size the exact mode renders at (adapts)
        self.exact_renders = 0
        self.preview_frames = 0
        self.h: dict[str, Any] = {}

    # ------------------------------------------------------------------ data
    def _build_world(self) -> None:
        from realsim.assets.errors import RealsimError
        from realsim.sim.world import world_from_scene

        scale = self.sim.scale if self.sim is not None else None
        try:
            self.world = world_points(world_from_scene(self.scene, scale=scale))
        except RealsimError as e:
            self.world_note = f"no world map: {e}"
        except Exception as e:  # a world that cannot be fitted (too few points, ...) must not stop the viewer
            self.world_note = f"no world map: {type(e).__name__}: {e}"

    # ------------------------------------------------------------------ server
    @property
    def url(self) -> str:
        host = self.opts.host if ":" not in self.opts.host else f"[{self.opts.host}]"
        return f"http://{host}:{self.opts.port}"

    def start(self) -> None:
        import viser

        if self.opts.host not in LOCAL_HOSTS:
            log.warning(f"serving on {self.opts.host}:{self.opts.port}: anyone who can reach this machine there can see "
                        "the scene and save files through the viewer")
        server = viser.ViserServer(host=self.opts.host, port=self.opts.port, verbose=False)
        if server.get_port() != self.opts.port:  # viser moves on to the next free port: we promised this one
            server.stop()
            raise InputError(f"port {self.opts.port} on {self.opts.host} is in use (pick another with --port)")
        self.server = server
        server.gui.configure_theme(show_logo=False, dark_mode=False)
        server.scene.set_up_direction("+z")
        self._add_scene()
        self._add_gui()
        server.on_client_connect(self._on_connect)
        t = threading.Thread(target=self._play_loop, name="realsim-view-play", daemon=True)
        t.start()
        self._threads.append(t)
        t = threading.Thread(target=self._exact_loop, name="realsim-view-exact", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self._exact_cv:
            self._exact_cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        if self.server is not None:
            self.server.stop()
            self.server = None

    def serve(self, seconds: float | None = None) -> None:
        """Block until `seconds` pass (forever when None); Ctrl-C stops the server and propagates KeyboardInterrupt."""
        try:
            end = None if seconds is None else time.monotonic() + seconds
            while end is None or time.monotonic() < end:
                time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
        finally:
            self.stop()

    # ------------------------------------------------------------------ scene nodes
    def _add_scene(self) -> None:
        sc = self.server.scene
        sp = self.splats
        self.h["splats"] = sc.add_gaussian_splats("/scene/splats", centers=sp.centers, covariances=sp.covariances,
                                                  rgbs=sp.rgbs, opacities=sp.opacities)
        add_frustums(sc, self.cameras, self.extent, self.h)
        if self.world is not None:
            w = self.world
            ps = 0.6 * w.cell
            if len(w.walkable):
                self.h["walkable"] = sc.add_point_cloud("/world/walkable", w.walkable, (120, 200, 120), point_size=ps,
                                                        visible=False)
            if len(w.obstacle):
                self.h["obstacle"] = sc.add_point_cloud("/world/obstacles", w.obstacle + [0, 0, 0.5 * w.cell],
                                                        (220, 40, 40), point_size=ps, visible=False)
            if len(w.ground):
                self.h["ground"] = sc.add_point_cloud("/world/ground", w.ground, (110, 110, 110), point_size=ps,
                                                      visible=False)
        self._add_sim_nodes(sc)

    # ------------------------------------------------------------------ GUI
    def _add_gui(self) -> None:
        gui = self.server.gui
        with gui.add_folder("Scene"):
            gui.add_markdown(f"**{self.scene.root.name}**: {self.scene.kind}, {len(self.splats)} Gaussians, "
                             f"{len(self.cameras)} cameras")
            self._toggle("Gaussian splats", ["splats"], True)
            self.h["cameras_toggle"] = self._toggle("Training cameras", [k for k in self.h if k.startswith("cam")], True)
            if self.world is not None:
                for k, label in (("walkable", "Walkable"), ("obstacle", "Obstacles"), ("ground", "Ground")):
                    self.h[f"{k}_toggle"] = self._toggle(label, [k], False)
            elif self.world_note:
                gui.add_markdown(self.world_note)
            ex = gui.add_checkbox("Exact (realsim render)", False,
                                  hint="show realsim's own render of this view as the background (server-side)")
            self.h["exact"] = ex

            @ex.on_update
            def _(_ev) -> None:
                self.h["splats"].visible = not ex.value
                for c in self.server.get_clients().values():
                    if ex.value:
                        self._request_exact(c)
                    else:
                        c.scene.set_background_image(None)
        self._add_sim_gui(gui)
        self._add_path_gui(gui)

    def _toggle(self, label: str, keys: list[str], initial: bool) -> Any:
        cb = self.server.gui.add_checkbox(label, initial)

        @cb.on_update
        def _(_ev) -> None:
            for k in keys:
                if k in self.h:
                    self.h[k].visible = cb.value

        return cb

    def _on_connect(self, client: Any) -> None:
        # start at the first training camera
        if self.cameras:
            self.set_client_camera(client, 0)

        @client.camera.on_update
        def _(_cam) -> None:
            if self.h.get("exact") is not None and self.h["exact"].value:
                self._request_exact(client)

    def show_cameras(self, visible: bool) -> None:
        for k in [k for k in self.h if k.startswith("cam")]:
            self.h[k].visible = visible

    def set_client_camera(self, client: Any, index: int) -> None:
        """Put a browser's view at training camera `index` (name order): pose, vertical fov, looking along its axis."""
        f = sorted(self.scene.cameras.frames, key=lambda f: f.name)[index]
        self.set_client_view(client, f.viewmat, self.cameras[index].fov)

    def set_client_view(self, client: Any, viewmat: np.ndarray, fov: float) -> None:
        """Put a browser's view at an OpenCV world-to-camera pose with a vertical fov (radians)."""
        c2w = np.linalg.inv(np.asarray(viewmat, np.float64))
        R, pos = c2w[:3, :3], c2w[:3, 3]
        wxyz, _ = c2w_from_viewmat(viewmat)
        with client.atomic():
            client.camera.fov = fov
            client.camera.up_direction = -R[:, 1]
            client.camera.position = pos
            client.camera.look_at = pos + R[:, 2] * max(0.5 * self.extent, 1e-2)
            client.camera.wxyz = wxyz  # exact orientation last (look_at and up alone leave the roll to viser)
            client.camera.position = pos
        if self.h.get("exact") is not None and self.h["exact"].value:
            self._request_exact(client)  # the browser may not report a view it was sent: render it now
