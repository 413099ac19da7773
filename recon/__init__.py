"""realsim.recon: inputs -> camera poses (pycolmap) -> trained scene bundles (Scaffold-GS, 3DGS); metrics and export.

Public API:
    run_poses(src, workdir, PosesOptions, colmap_dir=None) -> PosesResult
                                    -- `realsim poses`: photos / video / COLMAP model / transforms.json -> a WORKDIR of
                                       undistorted images, cameras.json, scene.json, sparse/0 (+Z up world, metres if known)
    load_sfm_points(path) -> (xyz [P,3] float32, rgb [P,3] uint8)   -- SfM points of a WORKDIR / COLMAP model (pycolmap)
    load_scene(path) -> Scene       -- a trained bundle: Scene.info, .cameras, .root, .model; Scene.render(viewmat, K, W, H,
                                       backend, background) -> {"rgb" [H,W,3], "depth" [H,W,1], "alpha" [H,W,1]};
                                       Scene.points(); Scene.splats(viewmat, K, W, H) -> Splats
    render_model(model, viewmat, K, W, H, backend, background)      -- the same render for a bare model
    Dataset, load_dataset(root, downscale, max_width)               -- posed training images + SfM points
    ScaffoldModel, ScaffoldConfig   -- anchor-based Scaffold-GS (Lu et al. 2024)
    GS3DModel, GS3DConfig           -- plain 3D Gaussian Splatting (SH degree 3), the baseline
    ScaffoldStrategy, ADCStrategy   -- densification strategies, kept apart from the models (as in gsplat)
    Splats, rasterize_splats        -- the explicit Gaussians a model yields for one view; the one call into the rasterizer
    TrainConfig, preset_config(name, model, iterations), train(source, out, cfg, ..., device="auto")  -- resumable
                                       training on cpu or cuda through one code path (train_device.py; growth.py grows
                                       Scaffold-GS anchors as published)
    evaluate_views(model, views)    -- held-out PSNR / SSIM
    PoseRefiner, PoseRefineConfig   -- per-camera SE(3) pose corrections learned through the viewmat gradients
    psnr, ssim                      -- image metrics ([H,W,3] in [0, 1])
    PartitionConfig, partition_scene(cams, xyz, cfg), load_partition(path)  -- ground-plane blocks with overlap, cameras
                                       assigned by visibility; partition.json (partition.py)
    train_blocks(workdir, out, cfg, pcfg, ray_address=...) -> BlocksResult  -- blocks trained as Ray tasks (resumable per
                                       block), merged into one standard bundle (blocks.py, merge.py; imports ray on use)
    LODConfig, with_lod(model, cfg) -> model  -- level of detail for rendering a large Scaffold scene: coarser anchors
                                       for distant content (lod.py; `render --lod PX`)

Modules not re-exported here: `sfm` (pycolmap SfM), `colmap_io` (COLMAP models through pycolmap), `align` (gravity and
scale), `nerfstudio` (transforms.json in and out), `inputs` (photo folders, video frames), `export` (PLY / .splat / USD).
"""
from .bundle import Scene, load_scene, render_model
from .colmap_io import load_sfm_points
from .dataset import Dataset, load_dataset
from .gs3d import GS3DConfig, GS3DModel
from .lod import LODConfig, with_lod
from .blocks import BlocksResult, train_blocks
from .metrics import psnr, ssim
from .partition import PartitionConfig, load_partition, partition_scene
from .pose_refine import PoseRefineConfig, PoseRefiner
from .poses import PosesOptions, PosesResult, run_poses
from .scaffold import ScaffoldConfig, ScaffoldModel
from .splats import Splats, rasterize_splats
from .strategy import ADCStrategy, ScaffoldStrategy
from .trainer import TrainConfig, evaluate_views, preset_config, train

__all__ = [
    "run_poses", "PosesOptions", "PosesResult", "load_sfm_points",
    "Scene", "load_scene", "render_model", "Dataset", "load_dataset",
    "ScaffoldModel", "ScaffoldConfig", "GS3DModel", "GS3DConfig", "ScaffoldStrategy", "ADCStrategy",
    "Splats", "rasterize_splats", "TrainConfig", "preset_config", "train", "evaluate_views", "psnr", "ssim",
    "PoseRefiner", "PoseRefineConfig",
    "PartitionConfig", "partition_scene", "load_partition", "train_blocks", "BlocksResult",
    "LODConfig", "with_lod",
]
