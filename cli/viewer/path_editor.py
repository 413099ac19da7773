"""Camera-path editor of `realsim view`: keyframes, preview, save as camera_path.json, start `realsim render`."""
from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError

from .data import c2w_from_viewmat, intrinsics_for, viewmat_from_c2w

log = logging.getLogger("realsim.cli.viewer")



def fov_of(K: np.ndarray, height: int) -> float:
    """Vertical field of view (radians) of intrinsics K for an image `height` pixels tall."""
    return 2 * math.atan(0.5 * height / float(np.asarray(K)[1][1]))



class PathEditorMixin:
    """ViewerApp's camera-path editor (needs self.keyframes, self.h, self.opts, self.scene, self.previewing)."""

    # ------------------------------------------------------------------ GUI
    def _add_path_gui(self, gui: Any) -> None:
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
