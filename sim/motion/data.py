"""Motion data: retargeting BVH clips onto the canonical skeleton (canon.py), 30 fps per-frame features and the training dataset.

Model frame: Y up, metres. The "root" is the hips projected on the ground (y=0) with a yaw `theta` about +Y;
facing direction = (sin theta, 0, cos theta). Per-frame feature vector (D = 4 + 6J + 3J + 2, J = 21):
  [0:2]  root planar velocity (x, z) in m/s, expressed in the previous frame's root frame
  [2]    root yaw rate (rad/s)
  [3]    root height = hips y (m)
  [4:4+6J]        6D local joint rotations (hips relative to the root yaw frame)
  [4+6J:4+9J]     joint positions in the current root frame (m)
  [4+9J:4+9J+2]   left / right foot contact (0/1)
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realsim.assets.bvh import BVH, read_bvh
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report
from realsim.assets.skeleton import Skeleton

from .canon import (D_FEAT, FOOT_IDX, FOOT_JOINTS, FPS, SKELETON, SL_CONTACT, SL_H, SL_POS, SL_ROT, SL_VEL, SL_YAW, SOLE_HEIGHT,
                    J, _kabsch, _swing, canonical_skeleton, mat_to_6d, rot_y, sixd_to_mat, wrap_angle)

log = logging.getLogger("realsim.sim.motion")

# The canonical skeleton, feature layout and rotation helpers live in canon.py; re-exported here for existing callers.
__all__ = ["FPS", "FOOT_JOINTS", "SOLE_HEIGHT", "canonical_skeleton", "SKELETON", "J", "D_FEAT", "SL_VEL", "SL_YAW", "SL_H",
           "SL_ROT", "SL_POS", "SL_CONTACT", "FOOT_IDX", "rot_y", "mat_to_6d", "sixd_to_mat", "wrap_angle",
           "Clip", "retarget_positions", "clip_from_bvh", "facing_yaw", "foot_contacts", "ClipFeatures", "clip_features",
           "Poses", "integrate_root", "features_to_poses", "LOCOMOTION", "MotionDataset", "find_clips", "build_dataset",
           "STYLE_ALIASES", "style_index"]

# Source joint names (several naming schemes) for each canonical joint; used by the position-based retargeter.
_ALIASES: dict[str, tuple[str, ...]] = {
    "Hips": ("Hips", "hip", "pelvis", "Pelvis"), "Spine": ("Spine", "LowerBack", "spine"), "Chest": ("Chest", "Spine1", "chest"),
    "Neck": ("Neck1", "Neck", "neck"), "Head": ("Head", "head"),
    "Shoulder_L": ("Shoulder_L", "LeftShoulder", "lCollar"), "UpperArm_L": ("UpperArm_L", "LeftArm", "lShldr"),
    "LowerArm_L": ("LowerArm_L", "LeftForeArm", "lForeArm"), "Hand_L": ("Hand_L", "LeftHand", "lHand"),
    "Shoulder_R": ("Shoulder_R", "RightShoulder", "rCollar"), "UpperArm_R": ("UpperArm_R", "RightArm", "rShldr"),
    "LowerArm_R": ("LowerArm_R", "RightForeArm", "rForeArm"), "Hand_R": ("Hand_R", "RightHand", "rHand"),
    "UpperLeg_L": ("UpperLeg_L", "LeftUpLeg", "lThigh"), "LowerLeg_L": ("LowerLeg_L", "LeftLeg", "lShin"),
    "Foot_L": ("Foot_L", "LeftFoot", "lFoot"), "Toes_L": ("Toes_L", "LeftToeBase", "LeftToe"),
    "UpperLeg_R": ("UpperLeg_R", "RightUpLeg", "rThigh"), "LowerLeg_R": ("LowerLeg_R", "RightLeg", "rShin"),
    "Foot_R": ("Foot_R", "RightFoot", "rFoot"), "Toes_R": ("Toes_R", "RightToeBase", "RightToe"),
}
# ------------------------------------------------------------------------------------------------------------- clips
@dataclass
class Clip:
    """One motion on the canonical skeleton at 30 fps (model frame, Y up, metres)."""

    local_rot: np.ndarray     # [T,J,3,3]
    root_pos: np.ndarray      # [T,3] hips world position
    style: str = "normal"
    action: str = "unknown"
    source: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.root_pos.shape[0])

    def positions(self) -> np.ndarray:
        return SKELETON.fk(self.local_rot, self.root_pos)[1]


def _unit_scale(b: BVH) -> float:
    """Metres per file unit, guessed from the leg length (hip joint to ankle)."""
    trans, rots = b.local_transforms()
    sk = Skeleton(b.names, b.parents, b.offsets)
    _, pos = sk.fk(rots[:1] * 0 + np.eye(3), trans[:1, 0], trans[:1])
    idx = _map_names(b.names)
    leg = np.linalg.norm(pos[0, idx["UpperLeg_L"]] - pos[0, idx["LowerLeg_L"]]) + np.linalg.norm(
        pos[0, idx["LowerLeg_L"]] - pos[0, idx["Foot_L"]])
    canon = 0.390811 + 0.409854
    return canon / max(leg, 1e-9)


def _map_names(names: list[str]) -> dict[str, int]:
    out = {}
    for cname, aliases in _ALIASES.items():
        for a in aliases:
            if a in names:
                out[cname] = names.index(a)
                break
        else:
            raise InputError(f"skeleton has no joint for canonical '{cname}' (tried {', '.join(aliases)})")
    return out


def retarget_positions(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical local rotations [T,J,3,3] and hips positions [T,3] reproducing the joint directions of `pos` [T,J,3].

    Joints with several children (hips, chest) take the Kabsch fit of all child directions; chain joints the smallest
    swing from their parent's frame; leaves keep their parent's orientation. Bone lengths become the canonical ones.
    """
    T = pos.shape[0]
    sk = SKELETON
    children: dict[int, list[int]] = {j: [] for j in range(J)}
    for j in range(1, J):
        children[int(sk.parents[j])].append(j)
    G = np.zeros((T, J, 3, 3))
    L = np.zeros((T, J, 3, 3))
    for j in range(J):
        p = int(sk.parents[j])
        Gp = G[:, p] if p >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3))
        ch = children[j]
        if len(ch) >= 2:
            # unnormalised vectors; a child sitting on its parent in the source (zero-length bone, e.g. CMU's
            # shoulders) is replaced by its own first child, so the fit still sees the shoulder line
            src, dst = [], []
            for c in ch:
                o, v = sk.offsets[c].copy(), pos[:, c] - pos[:, j]
                if np.linalg.norm(v, axis=-1).mean() < 0.02 and children[c]:
                    g = children[c][0]
                    o, v = o + sk.offsets[g], pos[:, g] - pos[:, j]
                src.append(o)
                dst.append(v)
            G[:, j] = _kabsch(np.stack(src), np.stack(dst, 1))
        elif len(ch) == 1:
            c = ch[0]
            a = Gp @ (sk.offsets[c] / np.linalg.norm(sk.offsets[c]))
            b = pos[:, c] - pos[:, j]
            b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
            G[:, j] = _swing(a, b) @ Gp
        else:
            G[:, j] = Gp
        L[:, j] = np.swapaxes(Gp, -1, -2) @ G[:, j]
    return L, pos[:, 0].copy()


def _resample(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear resampling along axis 0."""
    if abs(src_fps - dst_fps) < 1e-3:
        return x
    T = x.shape[0]
    t_src = np.arange(T) / src_fps
    t_dst = np.arange(0.0, t_src[-1] + 1e-9, 1.0 / dst_fps)
    flat = x.reshape(T, -1)
    out = np.stack([np.interp(t_dst, t_src, flat[:, i]) for i in range(flat.shape[1])], 1)
    return out.reshape((len(t_dst),) + x.shape[1:])


def clip_from_bvh(path: str | os.PathLike, style: str = "normal", action: str = "unknown") -> Clip:
    """Read any BVH and put it on the canonical skeleton at 30 fps.

    Files already on the canonical (Bandai-Namco) skeleton keep their exact local rotations; other skeletons are
    retargeted from joint positions (scaled by leg length, resampled to 30 fps).
    """
    b = read_bvh(path)
    trans, rots = b.local_transforms()
    names = b.names
    cnames = list(SKELETON.names)
    if all(n in names for n in cnames):
        idx = [names.index(n) for n in cnames]
        sk_src = Skeleton(names, b.parents, b.offsets)
        g, pos = sk_src.fk(rots, trans[:, 0], trans)
        par = b.parents[idx[0]]
        G_par = g[:, par] if par >= 0 else np.broadcast_to(np.eye(3), g[:, 0].shape)
        direct = all(int(b.parents[idx[j]]) == (idx[int(SKELETON.parents[j])] if j > 0 else par) for j in range(J))
        scale = _unit_scale(b)
        if direct:
            L = rots[:, idx].copy()
            L[:, 0] = G_par @ rots[:, idx[0]]
            root = pos[:, idx[0]] * scale
            L = _resample_rot(L, b.fps)
            root = _resample(root, b.fps, FPS)
            return Clip(L, root, style, action, str(path))
    idx_map = _map_names(names)
    sk_src = Skeleton(names, b.parents, b.offsets)
    _, pos = sk_src.fk(rots, trans[:, 0], trans)
    scale = _unit_scale(b)
    P = np.stack([pos[:, idx_map[n]] for n in cnames], 1) * scale
    P = _resample(P, b.fps, FPS)
    # put the floor at y=0: the lowest toe height (5th percentile) goes to the canonical standing toe height
    toes = np.minimum(P[:, cnames.index("Toes_L"), 1], P[:, cnames.index("Toes_R"), 1])
    P[..., 1] += SOLE_HEIGHT["Toes"] - np.percentile(toes, 5)
    L, root = retarget_positions(P)
    return Clip(L, root, style, action, str(path))


def _resample_rot(L: np.ndarray, fps: float) -> np.ndarray:
    if abs(fps - FPS) < 1e-3:
        return L
    r6 = _resample(mat_to_6d(L), fps, FPS)
    return sixd_to_mat(r6)


# ---------------------------------------------------------------------------------------------------------- features
def facing_yaw(pos: np.ndarray) -> np.ndarray:
    """Facing yaw [T] from hip and shoulder joints [T,J,3] (left-right axis crossed with up), lightly smoothed."""
    from scipy.ndimage import gaussian_filter1d

    s = SKELETON
    across = (pos[:, s.index("UpperLeg_L")] - pos[:, s.index("UpperLeg_R")]) + (
        pos[:, s.index("UpperArm_L")] - pos[:, s.index("UpperArm_R")])
    fwd = np.stack([-across[:, 2], np.zeros(len(across)), across[:, 0]], -1)
    if len(fwd) > 3:
        fwd = gaussian_filter1d(fwd, 1.5, axis=0, mode="nearest")
    return np.arctan2(fwd[:, 0], fwd[:, 2])


def foot_contacts(pos: np.ndarray, fps: float = FPS, h_thr: float = 0.05, v_thr: float = 0.7) -> np.ndarray:
    """Contacts [T,2] (left, right): ankle or toe within h_thr of its standing height and slower than v_thr (m/s)."""
    T = pos.shape[0]
    out = np.zeros((T, 2), np.float32)
    for k, (a, t) in enumerate(FOOT_IDX):
        c = np.zeros(T, bool)
        for j, h0 in ((a, SOLE_HEIGHT["Foot"]), (t, SOLE_HEIGHT["Toes"])):
            v = np.gradient(pos[:, j], axis=0) * fps if T > 1 else np.zeros((T, 3))
            c |= (pos[:, j, 1] - h0 < h_thr) & (np.linalg.norm(v, axis=-1) < v_thr)
        out[:, k] = c
    return out


@dataclass
class ClipFeatures:
    """Per-frame features [T,D] and the world root track used to build trajectory conditions."""

    feat: np.ndarray          # [T,D] float32
    root_xz: np.ndarray       # [T,2] root ground position (x, z)
    yaw: np.ndarray           # [T]
    style: str = "normal"
    action: str = "unknown"
    source: str = ""


def clip_features(clip: Clip) -> ClipFeatures:
    """Features of a clip (see the module docstring)."""
    L, root = clip.local_rot, clip.root_pos
    G, pos = SKELETON.fk(L, root)
    T = len(root)
    yaw = facing_yaw(pos)
    Ry = rot_y(yaw)
    RyT = np.swapaxes(Ry, -1, -2)
    ground = np.stack([root[:, 0], np.zeros(T), root[:, 2]], -1)
    dp = np.zeros((T, 3))
    dp[1:] = np.einsum("tij,tj->ti", RyT[:-1], ground[1:] - ground[:-1]) * FPS
    dyaw = np.zeros(T)
    dyaw[1:] = wrap_angle(yaw[1:] - yaw[:-1]) * FPS
    if T > 1:
        dp[0], dyaw[0] = dp[1], dyaw[1]
    Lr = L.copy()
    Lr[:, 0] = RyT @ G[:, 0]
    lp = np.einsum("tij,tkj->tki", RyT, pos - ground[:, None])
    feat = np.concatenate([dp[:, [0, 2]], dyaw[:, None], root[:, 1:2], mat_to_6d(Lr).reshape(T, -1), lp.reshape(T, -1),
                           foot_contacts(pos)], 1).astype(np.float32)
    return ClipFeatures(feat, ground[:, [0, 2]].astype(np.float64), yaw, clip.style, clip.action, clip.source)


@dataclass
class Poses:
    """World poses reconstructed from features (model frame, Y up)."""

    root_xz: np.ndarray     # [...,T,2]
    yaw: np.ndarray         # [...,T]
    local_rot: np.ndarray   # [...,T,J,3,3] (hips in world)
    hips: np.ndarray        # [...,T,3]
    global_rot: np.ndarray  # [...,T,J,3,3]
    joints: np.ndarray      # [...,T,J,3]
    contacts: np.ndarray    # [...,T,2]


def integrate_root(feat: np.ndarray, start_xz: np.ndarray, start_yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root track from velocities: frame 0 sits at (start_xz, start_yaw); feat [...,T,D] -> xz [...,T,2], yaw [...,T].

    Each frame's velocity is the step from the previous frame expressed in the previous root frame.
    """
    T = feat.shape[-2]
    xz = np.zeros(feat.shape[:-2] + (T, 2))
    yaw = np.zeros(feat.shape[:-2] + (T,))
    cur_xz = np.array(start_xz, dtype=np.float64)
    cur_yaw = np.array(start_yaw, dtype=np.float64)
    for t in range(T):
        if t > 0:
            v = feat[..., t, SL_VEL] / FPS
            c, s = np.cos(cur_yaw), np.sin(cur_yaw)
            cur_xz = cur_xz + np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], -1)
            cur_yaw = cur_yaw + feat[..., t, SL_YAW] / FPS
        xz[..., t, :] = cur_xz
        yaw[..., t] = cur_yaw
    return xz, yaw


def features_to_poses(feat: np.ndarray, start_xz=(0.0, 0.0), start_yaw=0.0, root_xz: np.ndarray | None = None,
                      yaw: np.ndarray | None = None) -> Poses:
    """Rebuild world poses from features [...,T,D]: root integrated from velocities (or given root_xz/yaw), FK of rotations."""
    if root_xz is None or yaw is None:
        root_xz, yaw = integrate_root(feat, np.asarray(start_xz, float), np.asarray(start_yaw, float))
    shp = feat.shape[:-1]
    Lr = sixd_to_mat(feat[..., SL_ROT].reshape(shp + (J, 6)).astype(np.float64))
    L = Lr.copy()
    L[..., 0, :, :] = rot_y(yaw) @ Lr[..., 0, :, :]
    hips = np.stack([root_xz[..., 0], feat[..., SL_H].astype(np.float64), root_xz[..., 1]], -1)
    G, pos = SKELETON.fk(L, hips)
    return Poses(root_xz, yaw, L, hips, G, pos, feat[..., SL_CONTACT] > 0.5)


# ------------------------------------------------------------------------------------------------------------ dataset
LOCOMOTION = ("walk", "run", "dash", "walk-back", "walk-left", "walk-right", "walk-turn-left", "walk-turn-right")


def _bandai_labels(root: Path) -> list[tuple[Path, str, str]]:
    """(bvh, style, action) for every Bandai-Namco clip under `root` (names dataset-N_{action}_{style}_{id}.bvh)."""
    out = []
    for f in sorted(root.glob("dataset-*/data/*.bvh")):
        parts = f.stem.split("_")
        if len(parts) < 4:
            continue
        action, style = parts[1], parts[2]
        jf = f.with_suffix(".json")
        if jf.is_file():  # the JSON holds label ids into cfg/*.txt; prefer them when readable
            try:
                lab = json.loads(jf.read_text())
                cfg = f.parents[1] / "cfg"
                cl = [ln.strip().split("_", 1)[-1] for ln in (cfg / "content_label.txt").read_text().split()]
                sl = [ln.strip().split("_", 1)[-1] for ln in (cfg / "style_label.txt").read_text().split()]
                action, style = cl[int(lab["content"])], sl[int(lab["style"])]
            except (OSError, ValueError, KeyError, IndexError):
                pass
        out.append((f, style, action))
    return out


@dataclass
class MotionDataset:
    """All clips as features, with labels; `styles` is the label vocabulary (index = style id)."""

    clips: list[ClipFeatures]
    styles: list[str]
    actions: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return sum(len(c.feat) for c in self.clips)


def find_clips(data: str | os.PathLike, actions: tuple[str, ...] | None = None) -> list[tuple[Path, str, str]]:
    """(bvh, style, action) for the clips to train on under a motion data folder (bandai_namco/, cmu_*/) or one BVH."""
    root = Path(data)
    if root.is_file():
        return [(root, "normal", "unknown")]
    if not root.is_dir():
        raise InputError(f"motion data {root} not found")
    items: list[tuple[Path, str, str]] = []
    for bn in [root] + [d for d in sorted(root.iterdir()) if d.is_dir()]:
        if any(bn.glob("dataset-*/data/*.bvh")):
            items += [it for it in _bandai_labels(bn) if actions is None or it[2] in actions]
    for f in sorted(root.glob("cmu_*/*.bvh")) + sorted(root.glob("cmu_*.bvh")):
        act = "walk" if "walk" in f.stem or "12_01" in f.stem else "misc"
        if act in (actions or ("walk",)):  # other CMU trials (01_01: playground climbing, feet off the floor) are opt-in
            items.append((f, "normal", act))
    if not items:
        items = [(f, "normal", "unknown") for f in sorted(root.rglob("*.bvh"))]
    if not items:
        raise InputError(f"no BVH clips found under {root}")
    return items


def build_dataset(data: str | os.PathLike, actions: tuple[str, ...] | None = None, max_clips: int | None = None,
                  progress: ProgressFn | None = None) -> MotionDataset:
    """Read, retarget and featurise every clip under `data`; clips that fail to parse are skipped with a warning."""
    items = find_clips(data, actions)[: max_clips or None]
    clips: list[ClipFeatures] = []
    for i, (f, style, action) in enumerate(items):
        try:
            clips.append(clip_features(clip_from_bvh(f, style, action)))
        except InputError as e:
            if len(items) == 1:
                raise
            log.warning("skipping %s: %s", f, e)
        report(progress, "load", i + 1, len(items))
    if not clips:
        raise InputError(f"no usable BVH clips under {data}")
    styles = sorted({c.style for c in clips})
    if "normal" in styles:
        styles.remove("normal")
        styles.insert(0, "normal")
    return MotionDataset(clips, styles, sorted({c.action for c in clips}))


STYLE_ALIASES = {"neutral": "normal", "default": "normal"}


def style_index(styles: list[str], name: str) -> int:
    """Index of a style label (aliases: neutral/default -> normal); InputError listing the choices otherwise."""
    n = STYLE_ALIASES.get(name, name)
    if n not in styles:
        raise InputError(f"unknown style '{name}' (choose from {', '.join(['neutral'] + styles)})")
    return styles.index(n)
