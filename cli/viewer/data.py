"""What `realsim view` shows, as plain arrays: the scene's Gaussians for viser, its cameras, the world map, a sim's agents.

Nothing here touches viser, so it is testable without a browser. Geometry is in the scene's world frame (+Z up, scene
units); sim outputs are in metres and are divided by the sim's world scale (metres per scene unit) on load.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError

SH_C0 = 0.28209479177387814


def rotmat_to_wxyz(R: np.ndarray) -> np.ndarray:
    """Rotation matrices [...,3,3] -> quaternions [...,4] (w, x, y, z), w >= 0."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, np.float64)
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat()  # x y z w
    q = np.concatenate([q[:, 3:], q[:, :3]], 1)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(R.shape[:-2] + (4,))


def wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    q = np.asarray(q, np.float64).reshape(-1, 4)
    return Rotation.from_quat(np.concatenate([q[:, 1:], q[:, :1]], 1)).as_matrix()


@dataclass
class SplatArrays:
    """Gaussians as viser's add_gaussian_splats takes them (view-independent colour: the SH DC term)."""

    centers: np.ndarray  # [N,3] float32
    covariances: np.ndarray  # [N,3,3] float32
    rgbs: np.ndarray  # [N,3] float32 in [0,1]
    opacities: np.ndarray  # [N,1] float32 in [0,1]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.centers.shape[0])


def cloud_to_splat_arrays(cloud: Any, info: dict[str, Any] | None = None) -> SplatArrays:
    """A realsim GaussianCloud (activated units, SH colour) -> centres, covariances, DC colour, opacity."""
    R = wxyz_to_rotmat(cloud.quats)
    s2 = np.asarray(cloud.scales, np.float64) ** 2
    cov = np.einsum("nij,nj,nkj->nik", R, s2, R)
    rgb = np.clip(0.5 + SH_C0 * np.asarray(cloud.sh, np.float64)[:, 0], 0.0, 1.0)
    return SplatArrays(np.asarray(cloud.means, np.float32), cov.astype(np.float32), rgb.astype(np.float32),
                       np.asarray(cloud.opacities, np.float32).reshape(-1, 1), dict(info or {}))


def scene_splats(scene: Any, views_between: int = 1, progress=None) -> SplatArrays:
    """The scene's plain Gaussians: 3DGS as stored, Scaffold baked the way `realsim export` bakes it (SH degree 0)."""
    from realsim.recon.export import ExportConfig, model_to_cloud

    cloud, info = model_to_cloud(scene.model, scene.cameras, ExportConfig(sh_degree=0, views_between=views_between),
                                 progress)
    return cloud_to_splat_arrays(cloud, {"model_kind": scene.kind, **info})


@dataclass
class CameraView:
    """One training camera for a frustum: OpenCV camera-to-world pose, vertical fov, aspect, thumbnail (or None)."""

    name: str
    wxyz: np.ndarray
    position: np.ndarray
    fov: float
    aspect: float
    image: np.ndarray | None
    split: str


def c2w_from_viewmat(viewmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera [4,4] -> (wxyz, position) of the camera in the world (OpenCV axes, as viser's camera)."""
    c2w = np.linalg.inv(np.asarray(viewmat, np.float64))
    return rotmat_to_wxyz(c2w[:3, :3]), c2w[:3, 3].copy()


def viewmat_from_c2w(wxyz: np.ndarray, position: np.ndarray) -> np.ndarray:
    c2w = np.eye(4)
    c2w[:3, :3] = wxyz_to_rotmat(wxyz)[0]
    c2w[:3, 3] = np.asarray(position, np.float64)
    return np.linalg.inv(c2w)


def intrinsics_for(fov: float, width: int, height: int) -> np.ndarray:
    """Pinhole K (square pixels, centred) for a vertical field of view in radians and an image size."""
    fy = 0.5 * height / math.tan(0.5 * fov)
    return np.array([[fy, 0.0, 0.5 * width], [0.0, fy, 0.5 * height], [0.0, 0.0, 1.0]])


def camera_views(scene: Any, thumb_side: int = 160) -> list[CameraView]:
    """Every camera of the scene, name order, with a small thumbnail of its photo when the photo is in the bundle."""
    return camera_views_of(scene.cameras, scene.root, thumb_side)


def camera_views_of(cameras: Any, root: str | os.PathLike, thumb_side: int = 160) -> list[CameraView]:
    """camera_views for a CameraSet whose images_dir is relative to `root` (a scene bundle or a poses WORKDIR)."""
    from PIL import Image

    out = []
    img_dir = Path(root) / (cameras.images_dir or "images")
    for f in sorted(cameras.frames, key=lambda f: f.name):
        wxyz, pos = c2w_from_viewmat(f.viewmat)
        fov = 2 * math.atan(0.5 * f.height / float(f.K[1][1]))
        img = None
        p = img_dir / f.name
        if p.is_file():
            try:
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    im.thumbnail((thumb_side, thumb_side))
                    img = np.asarray(im)
            except OSError:
                img = None
        out.append(CameraView(f.name, wxyz, pos, fov, f.width / f.height, img, f.split))
    return out


@dataclass
class WorldPoints:
    """The sim's world map as points on the ground: walkable cells and obstacle cells (scene units)."""

    walkable: np.ndarray  # [Nw,3]
    obstacle: np.ndarray  # [No,3]
    ground: np.ndarray  # [Ng,3] observed ground that is not walkable
    cell: float  # cell size in scene units


def world_points(world: Any) -> WorldPoints:
    """Cell centres of a realsim.sim World (metres) on its ground, converted to scene units."""
    def pts(mask: np.ndarray) -> np.ndarray:
        ij = np.argwhere(mask)
        if len(ij) == 0:
            return np.zeros((0, 3), np.float32)
        xy = world.to_world(ij)
        z = world.height(xy) if hasattr(world, "height") else np.zeros(len(xy))
        return (np.c_[xy, z] / world.scale).astype(np.float32)

    ground = world.support & ~world.walkable & ~world.obstacle
    return WorldPoints(pts(world.walkable), pts(world.obstacle), pts(ground), float(world.cell / world.scale))


@dataclass
class PropTrack:
    """One rigid prop of props.json (sim/physics): shape and size in metres, per-frame pose in scene units."""

    id: int
    shape: str  # sphere | box | capsule | cylinder
    size: tuple[float, ...]  # metres, as in the scenario: sphere (r,), box (x, y, z), capsule / cylinder (r, length)
    color: tuple[float, float, float]
    position: np.ndarray  # [Tp,3] scene units
    quat: np.ndarray  # [Tp,4] w, x, y, z
    fps: float

    def pose(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(wxyz, position) at a time in seconds (the prop's own frame rate; held at its last frame)."""
        i = int(np.clip(round(seconds * self.fps), 0, len(self.position) - 1))
        return self.quat[i], self.position[i]


def prop_tracks(pj: dict[str, Any], file: Path, scale: float, fps_default: float) -> list[PropTrack]:
    """The props of a parsed props.json (sim/physics; `file` names it in errors) in scene units: InputError, one line,
    on a malformed prop."""
    from realsim.sim.scenario import PROP_SHAPES

    fps = float(pj.get("fps") or fps_default)
    out = []
    for k, p in enumerate(pj.get("props", [])):
        where = f"{file}: props[{k}]"
        try:
            shape = str(p.get("shape", "sphere"))
            size = tuple(float(x) for x in np.atleast_1d(p.get("size", [0.11])))
            pos = np.asarray(p["position"], np.float64).reshape(-1, 3) / scale
            quat = np.asarray(p.get("quat") or [[1.0, 0, 0, 0]] * len(pos), np.float64).reshape(-1, 4)
            color = tuple(float(c) for c in p.get("color", (0.85, 0.35, 0.1)))[:3]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{where}: bad prop ({type(e).__name__}: {e})") from None
        if shape not in PROP_SHAPES or len(size) != PROP_SHAPES[shape]:
            raise InputError(f"{where}: shape {shape!r} with size {list(size)} is not a known prop shape")
        if len(pos) == 0 or len(quat) != len(pos):
            raise InputError(f"{where}: {len(pos)} positions and {len(quat)} quats (need one each per frame)")
        quat /= np.maximum(np.linalg.norm(quat, axis=1, keepdims=True), 1e-12)
        out.append(PropTrack(int(p.get("id", k)), shape, size, color, pos.astype(np.float32), quat, fps))
    return out


def prop_mesh_local(p: PropTrack, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The prop's triangle mesh in its own frame, in scene units: the mesh the sim's renderer draws (sim.physics.mesh)."""
    from realsim.sim.physics.mesh import prop_mesh
    from realsim.sim.scenario import PropSpec

    v, f, _ = prop_mesh(PropSpec(shape=p.shape, size=tuple(p.size), color=p.color))
    return (np.asarray(v, np.float64) / scale).astype(np.float32), np.asarray(f, np.uint32)


@dataclass
class SimPlayback:
    """A simulation's agents: joints [T,A,J,3] and roots [T,A,3] in scene units, skeleton parents, colours, fps."""

    root_dir: Path
    fps: float
    joints: np.ndarray
    root: np.ndarray
    parents: list[int]
    joint_names: list[str]
    colors: np.ndarray  # [A,3] uint8
    scale: float  # metres per scene unit
    props: list[PropTrack] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def n_agents(self) -> int:
        return int(self.joints.shape[1])

    def segments(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Skeleton line segments at frame t: points [S,2,3] and colours [S,2,3] uint8 (one bone per segment)."""
        t = int(np.clip(t, 0, self.n_frames - 1))
        ch = [j for j, p in enumerate(self.parents) if p >= 0]
        par = [self.parents[j] for j in ch]
        J = self.joints[t]  # [A,J,3]
        pts = np.stack([J[:, par], J[:, ch]], 2).reshape(-1, 2, 3)
        col = np.repeat(self.colors[:, None], len(ch), 1).reshape(-1, 1, 3).repeat(2, 1)
        return pts.astype(np.float32), col.astype(np.uint8)


def load_sim(sim_dir: str | os.PathLike, scene_root: str | os.PathLike) -> SimPlayback:
    """Read a `realsim simulate` / `demo` output folder (sim.sim_folder) in scene units; InputError when it is missing,
    incomplete, or from another scene."""
    from realsim.sim.sim_folder import read_sim_folder

    sf = read_sim_folder(sim_dir, scene_root)
    cols = []
    rng = np.random.default_rng(0)
    for look in sf.looks():
        c = look.get("shirt")
        cols.append((np.asarray(c, np.float64) * 255).clip(0, 255) if c is not None else rng.integers(60, 255, 3))
    props = prop_tracks(sf.props, sf.folder / "props.json", sf.scale, sf.fps) if sf.props is not None else []
    return SimPlayback(sf.folder, sf.fps, (sf.joints / sf.scale).astype(np.float32),
                       (sf.root / sf.scale).astype(np.float32), sf.parents, sf.names, np.asarray(cols, np.uint8),
                       sf.scale, props)


def scene_extent(centers: np.ndarray) -> float:
    """A robust size of the scene (the 5-95 percentile box diagonal), for sizing frustums and markers."""
    if len(centers) == 0:
        return 1.0
    lo, hi = np.percentile(centers, [5, 95], axis=0)
    return float(max(np.linalg.norm(hi - lo), 1e-3))
