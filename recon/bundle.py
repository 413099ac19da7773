"""Scene bundles: a poses WORKDIR layout (images/, cameras.json, sparse/0, scene.json) plus model.safetensors.

`load_scene(path)` gives a `Scene` whose model renders any camera; bundles are read without unpickling, and missing,
corrupt or foreign files raise InputError with one clear line.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realsim.assets.cameras import CameraSet, load_cameras, save_cameras
from realsim.assets.errors import InputError
from realsim.assets.scene import SceneInfo, load_scene_info, load_tensors, save_scene_info, save_tensors

from .antialias import raster_settings, training_eps2d, training_focal
from .appearance import NeighbourAppearance
from .gs3d import GS3DConfig, GS3DModel
from .scaffold import ScaffoldConfig, ScaffoldModel
from .splats import Splats, rasterize_splats

MODEL_FORMAT = "realsim-model-1"
MODEL_KINDS: dict[str, tuple[type, type]] = {"scaffold": (ScaffoldModel, ScaffoldConfig), "3dgs": (GS3DModel, GS3DConfig)}


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Everything a model needs to render (its state_dict), detached on CPU."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def build_model(kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor], source: str = "model") -> nn.Module:
    """Instantiate a model of `kind` and load `tensors` into it (strict: names and shapes must match)."""
    if kind not in MODEL_KINDS:
        raise InputError(f"{source}: unknown model kind {kind!r} (this realsim knows {sorted(MODEL_KINDS)})")
    cls, cfg_cls = MODEL_KINDS[kind]
    try:
        cfg = cfg_cls.from_dict(config)
        model = cls.empty_like_state(cfg, tensors)
        model.load_state_dict(tensors, strict=True)
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        msg = str(e).splitlines()[0]
        raise InputError(f"{source}: tensors do not match a {kind} model ({msg})") from None
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise InputError(f"{source}: tensor {k!r} holds NaN or Inf")
    return model.eval()


def save_model(path: str | os.PathLike, model: nn.Module) -> None:
    save_tensors(path, model_tensors(model), {"format": MODEL_FORMAT, "kind": model.kind})


def load_model(path: str | os.PathLike, kind: str, config: dict[str, Any]) -> nn.Module:
    tensors, meta = load_tensors(path)
    if meta.get("format") != MODEL_FORMAT:
        raise InputError(f"{path} is not a realsim model file (format {meta.get('format')!r}, expected {MODEL_FORMAT!r})")
    if meta.get("kind") != kind:
        raise InputError(f"{path} holds a {meta.get('kind')!r} model but scene.json says {kind!r}")
    return build_model(kind, config, {k: v.float() for k, v in tensors.items()}, str(path))


@dataclass
class Scene:
    """A trained scene: metadata, cameras, the model (eval mode, CPU) and its folder."""

    info: SceneInfo
    cameras: CameraSet
    root: Path
    model: nn.Module

    @property
    def kind(self) -> str:
        return self.model.kind

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """SfM points in the world frame: xyz [P,3] float32, rgb [P,3] uint8."""
        from .colmap_io import read_points

        return read_points(self.root)

    def splats(self, viewmat: Any, K: Any, width: int, height: int) -> Splats:
        with torch.no_grad():
            return self.model.splats(_t(viewmat), _t(K), int(width), int(height))

    def train_focal(self) -> float | None:
        """The focal length (px) the model was trained at (recon/antialias.py), None if the bundle does not say."""
        return training_focal(self.info.metadata, [float(f.K[0, 0]) for f in self.cameras.frames])

    def train_eps2d(self) -> float:
        """The rasterizer's 2-D widening (px^2) the model was trained with (TrainConfig.eps2d; 0.3 if not recorded)."""
        return training_eps2d(self.info.metadata)

    @cached_property
    def appearance(self) -> NeighbourAppearance | None:
        """The per-camera colour affine of a model trained with per-image affines (None otherwise), built once."""
        return NeighbourAppearance.for_model(self.model, self.cameras)

    def render(self, viewmat: Any, K: Any, width: int, height: int, backend: str = "auto",
               background: tuple[float, float, float] = (0.0, 0.0, 0.0),
               appearance: str = "auto") -> dict[str, torch.Tensor]:
        """{"rgb": [H,W,3], "depth": [H,W,1] expected z (0 where alpha ~ 0), "alpha": [H,W,1]} for an OpenCV camera;
        anti-aliased when its focal differs from the trained one (recon/antialias.py). appearance "auto": the colour of
        the photos near the camera where the model learned per-photo affines (recon/appearance.py); "shared": without."""
        if appearance not in ("auto", "shared"):
            raise ValueError(f"appearance must be 'auto' or 'shared', not {appearance!r}")
        Kt, Vt = _t(K), _t(viewmat)
        kw = raster_settings(self.train_focal(), float(Kt[0, 0]), eps2d=self.train_eps2d())
        out = render_model(self.model, Vt, Kt, int(width), int(height), backend, background, **kw)
        app = self.appearance if appearance == "auto" else None
        if app is not None:
            out["rgb"] = app(out["rgb"], Vt).contiguous()
        return out


def _t(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)


def render_model(model: nn.Module, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, backend: str = "auto",
                 background: tuple[float, float, float] = (0.0, 0.0, 0.0), cam_index: int | None = None,
                 **raster: Any) -> dict[str, torch.Tensor]:
    """Render RGB, expected depth and alpha of a model for one camera (no gradients); `raster`: rasterizer keywords."""
    with torch.no_grad():
        splats, _ = model.decode(viewmat, K, width, height, cam_index=cam_index, backend=backend)
        return render_splats(splats, viewmat, K, width, height, backend, background, **raster)


def render_splats(splats: Splats, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, backend: str = "auto",
                  background: tuple[float, float, float] = (0.0, 0.0, 0.0), **raster: Any) -> dict[str, torch.Tensor]:
    """RGB, expected depth (0 where alpha ~ 0) and alpha of explicit splats (no gradients); `raster`: e.g. rasterize_mode."""
    with torch.no_grad():
        if len(splats) == 0:
            bg = torch.as_tensor(background, dtype=torch.float32)
            return {"rgb": bg.expand(height, width, 3).clone(), "depth": torch.zeros(height, width, 1),
                    "alpha": torch.zeros(height, width, 1)}
        out, alpha, _ = rasterize_splats(splats, viewmat, K, width, height, backend=backend, background=background,
                                         render_mode="RGB+ED", **raster)
        rgb = out[..., :3].clamp(0, 1)
        depth = torch.where(alpha > 1e-4, out[..., 3:4], torch.zeros_like(alpha))
        return {"rgb": rgb.contiguous(), "depth": depth.contiguous(), "alpha": alpha.contiguous()}


def load_scene(path: str | os.PathLike) -> Scene:
    """Read a scene bundle; InputError for a missing, corrupt or foreign bundle or one without a trained model. A merged
    `--blocks` scene's stacked decoders are evaluated per block (merge.compact_decoders; same tensors, same maths)."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"scene {root} not found")
    if not root.is_dir():
        raise InputError(f"{root} is not a scene bundle folder")
    info = load_scene_info(root / "scene.json")
    if info.model_kind is None:
        raise InputError(f"{root} has no trained model (scene.json model.kind is null): run `realsim train {root} -o SCENE`")
    if info.model_kind not in MODEL_KINDS:
        raise InputError(f"{root}: unknown model kind {info.model_kind!r} in scene.json (this realsim knows {sorted(MODEL_KINDS)})")
    cams = load_cameras(root / "cameras.json")
    model = load_model(root / "model.safetensors", info.model_kind, info.model_config)
    from .merge import compact_decoders  # here, not at the top: merge imports this module

    return Scene(info, cams, root, compact_decoders(model))  # a merged --blocks scene: each block's own decoder


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_bundle(out_dir: Path, model: nn.Module, info: SceneInfo, cameras: CameraSet, source_root: Path,
                 extra_files: dict[str, Path] | None = None) -> None:
    """Fill the (temporary) folder out_dir: images/, cameras.json, sparse/0, scene.json, model.safetensors (+ extra files)."""
    from .colmap_io import find_model

    out_dir.mkdir(parents=True, exist_ok=True)
    img_src = source_root / cameras.images_dir
    (out_dir / "images").mkdir(exist_ok=True)
    for f in cameras.frames:
        _link_or_copy(img_src / f.name, out_dir / "images" / f.name)
    save_cameras(out_dir / "cameras.json", CameraSet(cameras.frames, "images"))
    sp = find_model(source_root)
    if sp is not None:
        dst = out_dir / "sparse" / "0"
        dst.mkdir(parents=True, exist_ok=True)
        for p in sp.iterdir():
            if p.is_file():
                _link_or_copy(p, dst / p.name)
    save_model(out_dir / "model.safetensors", model)
    info.model_kind = model.kind
    info.model_config = model.config.to_dict()
    save_scene_info(out_dir / "scene.json", info)
    for name, src in (extra_files or {}).items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out_dir / name)
