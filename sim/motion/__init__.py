"""realsim.sim.motion: controllable human-motion diffusion (data, model, training, sampling, controller).

Public API:
    MotionController, AgentPose         -- batched 30 Hz agents: from_default(n, styles, ground_height),
                                           reset(xy, heading), step(future_xy) -> AgentPose (world +Z up, metres)
    PlaybackConfig                      -- how plans are played (cross-fade, floor clamp, per-agent start variation)
    MotionMatchingController            -- nearest-neighbour motion-matching baseline with the same API
    MotionModel, MotionModelConfig      -- the diffusion model (load/save .safetensors, sample)
    default_weights_path                -- shipped weights (assets/weights/motion_default.safetensors)
    TrainConfig, PRESETS, train         -- training (resumable)
    build_dataset, clip_from_bvh, clip_features, features_to_poses  -- data + features (data.py)
    canonical_skeleton              -- the skeleton, feature layout and rotation helpers of the model frame (canon.py)
    make_path, rollout, sample_to_files -- commanded paths, rollouts, BVH + stick-figure MP4
    path_metrics, foot_metrics          -- tracking / skating / penetration metrics
"""
from .baseline import MotionMatchingController
from .controller import AgentPose, MotionController, PlaybackConfig
from .data import build_dataset, canonical_skeleton, clip_features, clip_from_bvh, features_to_poses
from .metrics import foot_metrics, path_metrics
from .model import MotionModel, MotionModelConfig, default_weights_path
from .sample import make_path, rollout, sample_to_files
from .train import PRESETS, TrainConfig, train

__all__ = [
    "MotionController", "AgentPose", "PlaybackConfig", "MotionMatchingController", "MotionModel", "MotionModelConfig",
    "default_weights_path", "TrainConfig", "PRESETS", "train", "build_dataset", "canonical_skeleton", "clip_features",
    "clip_from_bvh", "features_to_poses", "make_path", "rollout", "sample_to_files", "path_metrics", "foot_metrics",
]
