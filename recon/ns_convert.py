"""A realsim scene bundle as a nerfstudio output folder (config.yml + checkpoint + data/transforms.json), so that
`ns-viewer --load-config OUT/realsim/realsim-KIND/bundle/config.yml` and `ns-render` open it without retraining.

Run in `.venv-ns`: `python -m realsim.recon.ns_convert SCENE -o OUT`. Needs nerfstudio: nothing else in realsim imports it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import torch
import yaml

from realsim.assets.cameras import CameraSet
from realsim.assets.errors import InputError, RealsimError

from .bundle import load_scene, model_tensors
from .nerfstudio import write_points_ply, write_transforms

log = logging.getLogger("realsim.recon.ns_convert")
TIMESTAMP = "bundle"


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def bundle_to_nerfstudio(scene_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write OUT/data (images, transforms.json, sparse_pc.ply) and OUT/realsim/realsim-KIND/bundle/{config.yml,
    dataparser_transforms.json, nerfstudio_models/step-000000000.ckpt}; returns the config.yml path."""
    from .ns_method import trainer_config

    scene = load_scene(scene_dir)
    out = Path(out).resolve()
    data = out / "data"
    if out.exists() and any(out.iterdir()):
        raise RealsimError(f"output folder {out} is not empty")
    (data / "images").mkdir(parents=True, exist_ok=True)
    for f in scene.cameras.frames:
        _link_or_copy(scene.root / scene.cameras.images_dir / f.name, data / "images" / f.name)
    ply = None
    try:
        xyz, rgb = scene.points()
        if len(xyz):
            write_points_ply(data / "sparse_pc.ply", xyz, rgb)
            ply = "sparse_pc.ply"
    except InputError:
        log.info("%s has no SfM points: the nerfstudio data folder gets none", scene.root)
    write_transforms(data / "transforms.json", CameraSet(scene.cameras.frames, "images"), ply)

    cfg = trainer_config(scene.kind, iterations=0)
    m = cfg.pipeline.model
    for k, v in scene.info.model_config.items():
        if hasattr(m, k):
            setattr(m, k, v)
    m.eps2d = scene.train_eps2d()  # drawn with the widening it was trained with
    cfg.output_dir, cfg.experiment_name, cfg.timestamp = out, "realsim", TIMESTAMP
    cfg.data = cfg.pipeline.datamanager.data = data
    cfg.pipeline.datamanager.dataparser.data = data
    cfg.pipeline.datamanager.dataparser.load_3D_points = ply is not None
    base = cfg.get_base_dir()
    base.mkdir(parents=True, exist_ok=True)
    (base / "config.yml").write_text(yaml.dump(cfg), "utf8")  # what cfg.save_config() writes, without its console line
    (base / "dataparser_transforms.json").write_text(json.dumps({"transform": torch.eye(4)[:3].tolist(), "scale": 1.0}))
    state = {f"_model.rs.{k}": v for k, v in model_tensors(scene.model).items()}
    state["_model.device_indicator_param"] = torch.empty(0)
    ckpt = cfg.get_checkpoint_dir()
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 0, "pipeline": state, "optimizers": {}, "schedulers": {}, "scalers": {}},
               ckpt / "step-000000000.ckpt")
    return base / "config.yml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realsim.recon.ns_convert",
                                 description="realsim scene bundle -> nerfstudio output folder (ns-viewer / ns-render)")
    ap.add_argument("scene")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args(argv)
    try:
        cfg = bundle_to_nerfstudio(a.scene, a.out)
    except RealsimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(cfg)
    print(f"view it: ns-viewer --load-config {cfg} --viewer.websocket-host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
