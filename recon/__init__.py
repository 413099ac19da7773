"""realsim.recon (public API documented here as it lands)."""

# --- poses (issue 2): photos/video/COLMAP/transforms.json -> WORKDIR (INTERFACES.md section 2)
from .colmap_io import load_sfm_points  # noqa: E402  (xyz [P,3] float32 world, rgb [P,3] uint8) from WORKDIR/sparse/0
from .poses import PosesOptions, PosesResult, run_poses  # noqa: E402

# Scene bundles and models [scaffold team]:
#   load_scene(path) -> Scene(info, cameras, root, model); Scene.render(viewmat, K, W, H, backend, background) ->
#   {"rgb","depth","alpha"}; Scene.points(); Scene.splats(...); model.splats(viewmat, K, W, H) -> Splats
#   ScaffoldModel/ScaffoldConfig, GS3DModel/GS3DConfig, ScaffoldStrategy/ADCStrategy, TrainConfig/preset_config/train,
#   evaluate_views, load_dataset, psnr/ssim.
from .bundle import Scene, load_scene, render_model  # noqa: E402
from .dataset import Dataset, load_dataset  # noqa: E402
from .gs3d import GS3DConfig, GS3DModel  # noqa: E402
from .metrics import psnr, ssim  # noqa: E402
from .scaffold import ScaffoldConfig, ScaffoldModel  # noqa: E402
from .splats import Splats, rasterize_splats  # noqa: E402
from .strategy import ADCStrategy, ScaffoldStrategy  # noqa: E402
from .trainer import TrainConfig, evaluate_views, preset_config, train  # noqa: E402
