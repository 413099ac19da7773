"""Simulation panel of `realsim view`: agents, trajectories and props in the scene, timeline playback."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .data import prop_mesh_local


class SimPanelMixin:
    """ViewerApp's simulation parts (needs self.sim, self.server, self.h, self.frame, self.playing, self.speed)."""

    sim: Any
    server: Any
    h: dict[str, Any]

    # ------------------------------------------------------------------ scene nodes
    def _add_sim_nodes(self, sc: Any) -> None:
        if self.sim is None:
            return
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
    def _add_sim_gui(self, gui: Any) -> None:
        if self.sim is None:
            return
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
