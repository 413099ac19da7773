"""realsim.cli.viewer: the `realsim view` browser viewer (viser), at the cli level of the layering (it reads recon, sim
and render).

Public API: `ViewerApp(ViewerOptions(scene=..., sim=..., port=...))` with `.start()`, `.serve(seconds)`, `.stop()`,
`.set_frame(t)`, `.add_keyframe(viewmat, fov)`, `.save_camera_path(file)`, `.render_view(viewmat, fov, W, H)`;
`realsim.cli.viewer.data` turns scenes and sim outputs into plain arrays (no viser needed).
"""
from .app import ViewerApp, ViewerOptions, check_port

__all__ = ["ViewerApp", "ViewerOptions", "check_port"]
