"""The `realsim view` server: a viser app showing a scene, its cameras, its world map and a simulation's agents.

Use from Python (tests do): `app = ViewerApp(ViewerOptions(scene=...)); app.start(); ...; app.stop()`.
"""
from __future__ import annotations

import logging
import math
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError

from .data import (CameraView, SimPlayback, SplatArrays, c2w_from_viewmat, camera_views, intrinsics_for, load_sim,
                   prop_mesh_local, scene_extent, scene_splats, viewmat_from_c2w, world_points)

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


def fov_of(K: np.ndarray, height: int) -> float:
    """Vertical field of view (radians) of intrinsics K for an image `height` pixels tall."""
    return 2 * math.atan(0.5 * height / float(np.asarray(K)[1][1]))


class ViewerApp:
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
        if self.sim is not None:
            s = self.sim
            for a in range(s.n_agents):
                r = s.root[:, a]
                seg = np.stack([r[:-1], r[1:]], 1) if len(r) > 1 else np.stack([r, r], 1)
                self.h[f"traj{a}"] = sc.add_line_segments(f"/sim/trajectories/{a}", seg.astype(np.float32),
                                                          tuple(int(x) for x in s.colors[a]), thickness=0.02 / s.scale)
            for k, p in enumerate(s.props):  # sim/physics props: the sim renderer's mesh, posed per frame
                v, f = prop_mesh_local(p, s.scale)
                self.h[f"prop{k}"] = sc.add_mesh_simple(f"/sim/props/{p.id}", v, f,
                                                        color=tuple(int(255 * c) for c in p.color))
            self._draw_agents(0)

    def _draw_agents(self, t: int) -> None:
        s = self.sim
        if s is None or self.server is None:
            return
        pts, col = s.segments(t)
        vis = self.h["agents_toggle"].value if "agents_toggle" in self.h else True
        self.h["agents"] = self.server.scene.add_line_segments("/sim/agents", pts, col, thickness=0.04 / s.scale,
                                                               visible=vis)
        for k, p in enumerate(s.props):
            wxyz, pos = p.pose(t / s.fps)
            self.h[f"prop{k}"].wxyz = wxyz
            self.h[f"prop{k}"].position = pos

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
        if self.sim is not None:
            s = self.sim
            with gui.add_folder("Simulation"):
                gui.add_markdown(f"{s.n_agents} agents, {s.n_frames} frames at {s.fps:g} fps")
                fr = gui.add_slider("Frame", 0, max(1, s.n_frames - 1), 1, 0)
                play = gui.add_button("Play / pause")
                speed = gui.add_slider("Speed", 0.1, 4.0, 0.1, 1.0)
                at = gui.add_checkbox("Agents", True)
                self._toggle("Trajectories", [f"traj{a}" for a in range(s.n_agents)], True)
                if s.props:
                    self.h["props_toggle"] = self._toggle(f"Props ({len(s.props)})",
                                                          [f"prop{k}" for k in range(len(s.props))], True)
                self.h.update(frame_slider=fr, speed_slider=speed, agents_toggle=at)

                @fr.on_update
                def _(_ev) -> None:
                    self.frame = int(fr.value)
                    self._draw_agents(self.frame)

                @play.on_click
                def _(_ev) -> None:
                    self.playing = not self.playing

                @speed.on_update
                def _(_ev) -> None:
                    self.speed = float(speed.value)

                @at.on_update
                def _(_ev) -> None:
                    self.h["agents"].visible = at.value
        with gui.add_folder("Camera path"):
            info = gui.add_markdown("0 keyframes")
            add = gui.add_button("Add keyframe (current view)")
            sel = gui.add_number("Keyframe #", 0, min=0, step=1, hint="which keyframe the buttons below act on")
            goto = gui.add_button("Go to keyframe")
            move = gui.add_button("Move keyframe to current view")
            rm = gui.add_button("Remove keyframe")
            dur = gui.add_number("Duration (s)", 4.0, min=0.1, step=0.1)
            fov = gui.add_slider("FOV (deg)", 10.0, 120.0, 1.0, 60.0)
            fps = gui.add_number("FPS", 30.0, min=1.0, step=1.0)
            res = gui.add_vector2("Size (px)", (640, 360), min=(16, 16), step=1)
            preview = gui.add_button("Preview path (play / stop)")
            out = gui.add_text("Save to", str(self.opts.path_out))
            save = gui.add_button("Save camera_path.json")
            rout = gui.add_text("Render to", str(Path(self.opts.path_out).with_suffix("")) + "_render",
                                hint="output folder of `realsim render SCENE --path FILE` (must be new or empty)")
            streams = gui.add_text("Streams", "rgb", hint="comma list of rgb, depth, normal, alpha")
            render = gui.add_button("Save and render video")
            rinfo = gui.add_markdown("")
            self.h.update(kf_info=info, kf_sel=sel, kf_duration=dur, kf_fov=fov, kf_fps=fps, kf_size=res, kf_out=out,
                          kf_render_out=rout, kf_streams=streams, kf_render_info=rinfo)

            def current(ev) -> tuple[np.ndarray, float] | None:
                if ev.client is None:
                    return None
                cam = ev.client.camera
                return viewmat_from_c2w(cam.wxyz, cam.position), math.radians(float(fov.value))

            def notify(ev, title: str, msg: str) -> None:
                if ev.client is not None:
                    ev.client.add_notification(title, msg, auto_close_seconds=5.0)

            @add.on_click
            def _(ev) -> None:
                if (v := current(ev)) is not None:
                    sel.value = self.add_keyframe(*v) - 1

            @goto.on_click
            def _(ev) -> None:
                i = int(sel.value)
                if ev.client is not None and 0 <= i < len(self.keyframes):
                    v, f = self.keyframes[i]
                    self.set_client_view(ev.client, v, f)

            @move.on_click
            def _(ev) -> None:
                if (v := current(ev)) is not None:
                    try:
                        self.move_keyframe(int(sel.value), *v)
                    except InputError as e:
                        notify(ev, "Camera path", str(e))

            @rm.on_click
            def _(ev) -> None:
                try:
                    self.remove_keyframe(int(sel.value))
                    sel.value = max(0, min(int(sel.value), len(self.keyframes) - 1))
                except InputError as e:
                    notify(ev, "Camera path", str(e))

            @preview.on_click
            def _(ev) -> None:
                if self.previewing.is_set():
                    self.previewing.clear()
                elif ev.client is not None:
                    try:
                        self.preview_path(ev.client)
                    except InputError as e:
                        notify(ev, "Camera path", str(e))

            @save.on_click
            def _(ev) -> None:
                try:
                    p = self.save_camera_path(Path(out.value))
                    msg = f"saved {p} ({len(self.keyframes)} keyframes)"
                except InputError as e:
                    msg = str(e)
                notify(ev, "Camera path", msg)

            @render.on_click
            def _(ev) -> None:
                try:
                    self.start_render(Path(out.value), Path(rout.value), streams.value)
                    msg = f"rendering to {rout.value} (log: {self.render_log})"
                except InputError as e:
                    msg = str(e)
                notify(ev, "Render", msg)

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

    # ------------------------------------------------------------------ timeline
    def set_frame(self, t: int) -> None:
        if self.sim is None:
            return
        t = int(np.clip(t, 0, self.sim.n_frames - 1))
        self.frame = t
        if "frame_slider" in self.h:
            self.h["frame_slider"].value = t  # its callback redraws the agents
        self._draw_agents(t)

    def _play_loop(self) -> None:
        last = time.monotonic()
        acc = 0.0
        while not self._stop.wait(0.05):
            now = time.monotonic()
            dt, last = now - last, now
            if not self.playing or self.sim is None:
                acc = 0.0
                continue
            acc += dt * self.sim.fps * self.speed
            step = int(acc)
            if step:
                acc -= step
                self.set_frame((self.frame + step) % self.sim.n_frames)

    # ------------------------------------------------------------------ exact mode
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
            except Exception as e:  # a client that went away, a render that failed: keep serving
                log.debug("exact render failed: %s", e)

    def exact_image(self, cam: Any, full: bool = False) -> tuple[np.ndarray, int]:
        """The exact mode's frame of a viser camera (wxyz, position, fov, image size): realsim's render at the adaptive
        fraction of the canvas (full size when `full`), and the canvas width. Updates the adaptive scale."""
        W0, H0 = max(16, int(cam.image_width or 640)), max(16, int(cam.image_height or 480))
        s = 1.0 if full else self.exact_scale
        W, H = max(16, int(W0 * s)), max(16, int(H0 * s))
        t0 = time.perf_counter()
        img = self.render_view(viewmat_from_c2w(cam.wxyz, cam.position), float(cam.fov), W, H)
        dt = time.perf_counter() - t0
        if not full:  # adapt: aim at exact_target_s per frame while the view moves
            self.exact_scale = float(np.clip(s * math.sqrt(self.opts.exact_target_s / max(dt, 1e-3)), 0.1, 1.0))
        return img, W0

    # ------------------------------------------------------------------ camera path
    def add_keyframe(self, viewmat: np.ndarray, fov: float) -> int:
        self.keyframes.append((np.asarray(viewmat, np.float64), float(fov)))
        self._draw_keyframes()
        return len(self.keyframes)

    def _check_index(self, i: int) -> int:
        if not 0 <= i < len(self.keyframes):
            raise InputError(f"no keyframe #{i} (there are {len(self.keyframes)}, numbered from 0)")
        return i

    def move_keyframe(self, i: int, viewmat: np.ndarray, fov: float) -> None:
        """Replace keyframe i (0-based) by a new pose and fov, keeping its place in the path."""
        self.keyframes[self._check_index(i)] = (np.asarray(viewmat, np.float64), float(fov))
        self._draw_keyframes()

    def remove_keyframe(self, i: int) -> None:
        del self.keyframes[self._check_index(i)]
        self._draw_keyframes()

    def preview_path(self, client: Any, path: Any = None) -> threading.Thread:
        """Play the camera path (the editor's, or a CameraPath) in a browser's view at its fps; previewing.clear() stops."""
        path = path if path is not None else self.camera_path()
        self.previewing.set()

        def play() -> None:
            t0 = time.monotonic()
            try:
                for k in range(len(path.viewmats)):
                    if not self.previewing.is_set() or self._stop.is_set():
                        return
                    time.sleep(max(0.0, t0 + k / path.fps - time.monotonic()))
                    self.set_client_view(client, path.viewmats[k], fov_of(path.Ks[k], path.height))
                    self.preview_frames += 1
            except Exception as e:  # the client went away
                log.debug("preview stopped: %s", e)
            finally:
                self.previewing.clear()

        self.preview_frames = 0
        t = threading.Thread(target=play, name="realsim-view-preview", daemon=True)
        t.start()
        return t

    def render_command(self, path_file: Path, out_dir: Path, streams: str = "rgb") -> list[str]:
        """The `realsim render SCENE --path FILE -o OUT` command line the editor runs."""
        return [sys.executable, "-m", "realsim.cli", "-q", "render", str(self.scene.root), "-o", str(out_dir),
                "--path", str(path_file), "--streams", streams, "--backend", self.opts.backend, "--json"]

    def start_render(self, path_file: Path, out_dir: Path, streams: str = "rgb") -> subprocess.Popen:
        """Save the path to `path_file`, then start `realsim render` with it in the background (log beside OUT)."""
        if self.render_proc is not None and self.render_proc.poll() is None:
            raise InputError("a render is still running (its log: {})".format(self.render_log))
        out_dir = Path(out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise InputError(f"render output {out_dir} exists and is not an empty folder: pick another")
        self.save_camera_path(path_file)
        self.render_log = out_dir.parent / f"{out_dir.name}.log"
        self.render_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.render_log, "w") as logf:
            self.render_proc = subprocess.Popen(self.render_command(path_file, out_dir, streams), stdout=logf,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proc = self.render_proc
        self._set_render_info(f"rendering {out_dir} ...")

        def watch() -> None:
            rc = proc.wait()
            self._set_render_info(f"render {'done: ' + str(out_dir) if rc == 0 else f'failed (exit {rc}), see {self.render_log}'}")

        t = threading.Thread(target=watch, name="realsim-view-render", daemon=True)
        t.start()
        return proc

    def _set_render_info(self, text: str) -> None:
        if "kf_render_info" in self.h:
            self.h["kf_render_info"].content = text

    def _draw_keyframes(self) -> None:
        if self.server is None:
            return
        sc = self.server.scene
        for k in [k for k in self.h if k.startswith("kf_frustum")]:
            self.h.pop(k).remove()
        for i, (v, fov) in enumerate(self.keyframes):
            wxyz, pos = c2w_from_viewmat(v)
            self.h[f"kf_frustum{i}"] = sc.add_camera_frustum(f"/camera_path/{i:03d}", fov=fov, aspect=16 / 9,
                                                             scale=0.06 * self.extent, color=(200, 30, 200),
                                                             wxyz=wxyz, position=pos)
        if "kf_info" in self.h:
            self.h["kf_info"].content = f"{len(self.keyframes)} keyframes"

    def camera_path(self, seconds: float | None = None, fps: float | None = None, width: int | None = None,
                    height: int | None = None):
        """The keyframes as a realsim CameraPath (constant-speed spline through them, their fovs blended)."""
        from realsim.assets.cameras import CameraFrame
        from realsim.render.paths import CameraPath, interp_path

        if not self.keyframes:
            raise InputError("no keyframes: add one from the current view first")
        seconds = float(seconds if seconds is not None else self.h["kf_duration"].value)
        fps = float(fps if fps is not None else self.h["kf_fps"].value)
        if width is None or height is None:
            width, height = (int(x) for x in self.h["kf_size"].value)
        frames = [CameraFrame(f"kf{i:03d}", intrinsics_for(fov, width, height), v, width, height)
                  for i, (v, fov) in enumerate(self.keyframes)]
        if len(frames) == 1:
            n = max(1, int(round(seconds * fps)))
            return CameraPath(np.repeat(frames[0].viewmat[None], n, 0), np.repeat(frames[0].K[None], n, 0),
                              width, height, fps)
        return interp_path(frames, seconds=seconds, fps=fps, width=width, height=height, order="given")

    def save_camera_path(self, file: Path, **kw) -> Path:
        from realsim.render.paths import save_camera_path

        file = Path(file)
        if file.is_dir():
            raise InputError(f"{file} is a folder: give a .json file name")
        save_camera_path(file, self.camera_path(**kw))
        return file
