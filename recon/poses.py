"""`realsim poses`: photos / video / COLMAP model / transforms.json -> a WORKDIR of undistorted images, posed cameras in the
gravity-aligned world, the COLMAP model in that world, scene.json and a nerfstudio transforms.json (layout: README, "Camera poses")."""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.atomic import atomic_dir
from realsim.assets.cameras import save_cameras
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report
from realsim.assets.scene import SceneInfo, WorldInfo, save_scene_info

from . import align as _align
from . import colmap_io, nerfstudio, sfm
from .inputs import IMAGE_SUFFIXES, StagedImages, default_threads, prepare_input

log = logging.getLogger("realsim.recon.poses")


@dataclass
class PosesOptions:
    """Everything `realsim poses` can be told."""

    max_image_size: int | None = 1600  # longest side used for SfM and written to WORKDIR/images
    seed: int = 0
    matcher: str = "auto"
    loop_closure: bool = True  # sequential matching: also pair far-apart photos (doubling steps, bag-of-words retrieval)
    scale: float | None = None  # metres per SfM unit
    camera_height: float | None = None  # metres of camera above the ground plane
    assumed_camera_height: float | None = None  # used (with a warning) when no GPS, scale or camera_height fixes metres
    holdout_every: int = 8
    video_fps: float = 2.0
    max_frames: int = 300
    num_threads: int = 0  # 0: all CPUs
    align: bool = True  # False keeps a given (COLMAP / transforms.json) frame as it is
    text_model: bool = False  # also write sparse/0 as COLMAP text
    relaxed_init: str = "auto"
    min_registered: int = 3
    mapper: str = "incremental"  # incremental | global (pycolmap GLOMAP; see sfm.map_global)
    partition: str = "auto"  # incremental: overlapping chunks mapped separately and merged (auto: long sequences; partition_sfm)
    chunk_size: int = 24  # partitioned: consecutive photos per chunk
    chunk_overlap: int | None = None  # partitioned: photos a chunk shares with the next (None: a third, at least 3)


@dataclass
class PosesResult:
    workdir: Path
    n_images: int
    n_registered: int
    n_points: int
    mean_reproj_px: float
    metric: bool
    scale_source: str
    matcher: str | None
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)


def _input_kind(src: Path | None, colmap_dir: Path | None) -> str:
    if colmap_dir is not None:
        return "colmap"
    if src is None:
        raise InputError("give an INPUT (folder of images, video or transforms.json) or --colmap DIR")
    if src.is_file() and src.suffix.lower() == ".json":
        return "transforms"
    if src.is_dir() and (src / "transforms.json").is_file():
        return "transforms"
    return "images"


def _stage_given_images(paths: list[Path], dst: Path) -> list[str]:
    """Copy the images named by a transforms.json / COLMAP model into one flat folder; returns their names there."""
    dst.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in paths]
    if len(set(names)) != len(names):  # same file name in different folders: keep the parent folder in the name
        names = [f"{p.parent.name}__{p.name}" for p in paths]
    for p, n in zip(paths, names):
        shutil.copyfile(p, dst / n)
    return names


def _triangulate_fixed(rec, image_dir: Path, work: Path, opts: PosesOptions, progress: ProgressFn | None):
    """Points for given poses: SIFT + matching, then triangulation with every camera and pose held fixed."""
    import pycolmap

    names = sorted(im.name for im in rec.images.values())
    db = work / "database.db"
    db.unlink(missing_ok=True)
    so = sfm.SfmOptions(matcher=opts.matcher, num_threads=opts.num_threads, seed=opts.seed)
    staged = StagedImages(image_dir, names, [], {n: (i,) for i, n in enumerate(names)})
    so.single_camera = False
    sfm.extract(staged, db, so, progress)
    with pycolmap.Database.open(str(db)) as d:
        db_images = {im.name: im for im in d.read_all_images()}
        kps = {im.name: d.read_keypoints(im.image_id) for im in d.read_all_images()}
        # Database cameras take the given intrinsics so the triangulator and the model agree.
        for name, dim in db_images.items():
            given = rec.cameras[rec.find_image_with_name(name).camera_id]
            cam = d.read_camera(dim.camera_id)
            cam.model, cam.width, cam.height, cam.params = given.model, given.width, given.height, given.params
            cam.has_prior_focal_length = True
            d.update_camera(cam)
    new = pycolmap.Reconstruction()
    for name in names:
        old = rec.find_image_with_name(name)
        dim = db_images[name]
        cam = pycolmap.Camera(rec.cameras[old.camera_id].todict())
        cam.camera_id = dim.camera_id
        new.add_camera_with_trivial_rig(cam)
        im = pycolmap.Image(name=name, keypoints=np.asarray(kps[name][:, :2], np.float64), camera_id=dim.camera_id, image_id=dim.image_id)
        new.add_image_with_trivial_frame(im, old.cam_from_world())
    matcher = sfm.choose_matcher(names, so, False, False)
    sfm.match(db, sfm.make_pairs(names, matcher, so, db, {}), work, so, progress)
    out = work / "triangulated"
    out.mkdir(parents=True, exist_ok=True)
    report(progress, "triangulate", 0, 1)
    po = pycolmap.IncrementalPipelineOptions()
    po.num_threads = opts.num_threads if opts.num_threads > 0 else default_threads()
    po.random_seed = opts.seed
    tri = pycolmap.triangulate_points(new, db, image_dir, out, clear_points=True, options=po, refine_intrinsics=False)
    report(progress, "triangulate", 1, 1)
    return tri, matcher


def _check_image_sizes(rec, image_dir: Path) -> None:
    """Given cameras must describe the pixels on disk (a model made at another resolution would be silently wrong)."""
    from PIL import Image, UnidentifiedImageError

    for im in colmap_io.registered_images(rec):
        cam = rec.cameras[im.camera_id]
        try:
            with Image.open(image_dir / im.name) as f:
                size = f.size
        except (OSError, UnidentifiedImageError):
            raise InputError(f"image {image_dir / im.name} is unreadable") from None
        if size != (cam.width, cam.height):
            raise InputError(f"image {im.name} is {size[0]}x{size[1]} but its camera says {cam.width}x{cam.height}; "
                             f"give the images the poses were made for")


def _find_colmap_images(colmap_dir: Path) -> Path | None:
    for cand in (colmap_dir / "images", colmap_dir.parent / "images", colmap_dir.parent.parent / "images"):
        if cand.is_dir():
            return cand
    return None


def run_poses(src: str | Path | None, workdir: str | Path, opts: PosesOptions | None = None, colmap_dir: str | Path | None = None,
              overwrite: bool = False, progress: ProgressFn | None = None) -> PosesResult:
    """Build WORKDIR from photos, a video, a COLMAP model (+ its images) or a transforms.json; all-or-nothing on disk."""
    import pycolmap

    opts = opts or PosesOptions()
    t0 = time.time()
    pycolmap.logging.minloglevel = 2  # COLMAP's glog INFO/WARNING chatter would reach the user's terminal; errors still do
    src = Path(src) if src is not None else None
    colmap_dir = Path(colmap_dir) if colmap_dir is not None else None
    kind = _input_kind(src, colmap_dir)
    if src is not None and not src.exists():
        raise InputError(f"input {src} does not exist")
    if opts.max_image_size is not None and opts.max_image_size < 64:
        raise InputError(f"--max-image-size must be at least 64 pixels, got {opts.max_image_size}")
    if opts.holdout_every < 0:
        raise InputError(f"--holdout-every must be >= 0, got {opts.holdout_every}")
    if opts.scale is not None and opts.camera_height is not None:
        raise InputError("give either --scale or --camera-height, not both")
    overlap = opts.chunk_overlap if opts.chunk_overlap is not None else max(3, opts.chunk_size // 3)
    if overlap < 3 or opts.chunk_size <= overlap:
        raise InputError(f"chunks of {opts.chunk_size} photos sharing {overlap} with the next: a chunk shares "
                         f"at least 3 photos and fewer than it holds (--chunk-size 4 or more)")
    workdir = Path(workdir)
    meta: dict[str, Any] = {"source": str(src if src is not None else colmap_dir), "input_kind": kind, "seed": opts.seed}
    sfm_res = None
    matcher = None
    with atomic_dir(workdir, overwrite=overwrite) as out:
        work = out / "_work"
        work.mkdir()
        if kind == "images":
            staged = prepare_input(src, work / "images", opts.max_image_size, opts.video_fps, opts.max_frames, progress)
            so = sfm.SfmOptions(matcher=opts.matcher, num_threads=opts.num_threads, seed=opts.seed,
                                relaxed_init=opts.relaxed_init, min_registered=opts.min_registered,
                                loop_neighbors=sfm.SfmOptions.loop_neighbors if opts.loop_closure else 0,
                                far_steps=opts.loop_closure, mapper=opts.mapper, partition=opts.partition,
                                chunk_size=opts.chunk_size, chunk_overlap=overlap)
            sfm_res = sfm.run_sfm(staged, work, so, progress)
            rec, image_dir, matcher = sfm_res.reconstruction, staged.folder, sfm_res.matcher
            n_images = sfm_res.n_images
            meta.update(skipped=staged.skipped, from_video=staged.from_video, matcher=matcher, mapper=opts.mapper,
                        n_pairs=sfm_res.n_pairs, partitioned=any("chunk" in a for a in sfm_res.attempts),
                        mapping_attempts=sfm_res.attempts, n_cameras=rec.num_cameras())
            undist_max = None
        else:
            if kind == "colmap":
                rec = colmap_io.read_model(colmap_dir)
                img_src = src if src is not None else _find_colmap_images(colmap_dir)
                if img_src is None or not img_src.is_dir():
                    raise InputError(f"images for the COLMAP model {colmap_dir} not found: pass the image folder as INPUT")
                regs = colmap_io.registered_images(rec)
                if len(regs) < 3:
                    raise InputError(f"COLMAP model {colmap_dir} has {len(regs)} registered image(s); at least 3 are needed")
                missing = [im.name for im in regs if not (img_src / im.name).is_file()]
                if missing:
                    raise InputError(f"{len(missing)} image(s) of the COLMAP model are missing in {img_src}, e.g. {missing[0]}")
                image_dir = img_src
                points_given = rec.num_points3D() > 0
            else:
                frames, ply = nerfstudio.read_transforms(src)
                names = _stage_given_images([f.path for f in frames], work / "images")
                rec = nerfstudio.frames_to_reconstruction(frames, names)
                image_dir = work / "images"
                points_given = False
                if ply is not None and ply.is_file():
                    xyz, rgb = nerfstudio.read_points_ply(ply)
                    for p, c in zip(xyz.astype(np.float64), rgb):
                        rec.add_point3D(p, pycolmap.Track(), c)
                    points_given = len(xyz) > 0
            n_images = rec.num_reg_images()
            if not points_given:
                rec, matcher = _triangulate_fixed(rec, image_dir, work, opts, progress)
                meta["triangulated_with_fixed_poses"] = True
                meta["matcher"] = matcher
            undist_max = opts.max_image_size
        if kind != "images":
            _check_image_sizes(rec, image_dir)
        report(progress, "undistort", 0, 1)
        und = _undistort(rec, image_dir, out, undist_max, opts)
        report(progress, "undistort", 1, 1)
        names, R_cw, C = colmap_io.rotations_centers(und)
        xyz, _ = colmap_io.points_of(und)
        if opts.align:
            al = _align.compute_alignment(R_cw, C, xyz.astype(np.float64), names, sfm_res.gps_enu if sfm_res else None,
                                          opts.scale, opts.camera_height, seed=opts.seed,
                                          assumed_camera_height=opts.assumed_camera_height)
        else:
            s = opts.scale or 1.0
            M = np.eye(4)
            M[:3, :3] *= s
            al = _align.Alignment(M, s, opts.scale is not None, "given", "user_scale" if opts.scale else "none")
        M = al.matrix
        sR = M[:3, :3]
        und.transform(pycolmap.Sim3d(al.scale, pycolmap.Rotation3d(sR / al.scale), M[:3, 3]))
        sparse = out / "sparse" / "0"
        colmap_io.write_model(und, sparse)
        if opts.text_model:
            colmap_io.write_model(und, out / "sparse" / "0_text", text=True)
        cams = colmap_io.camera_set(und, opts.holdout_every)
        save_cameras(out / "cameras.json", cams)
        xyz, rgb = colmap_io.points_of(und)
        nerfstudio.write_points_ply(out / "sparse_pc.ply", xyz, rgb)
        nerfstudio.write_transforms(out / "transforms.json", cams, "sparse_pc.ply",
                                    {im.name: int(im.image_id) for im in und.images.values()})
        err = float(und.compute_mean_reprojection_error()) if und.num_points3D() else float("nan")
        n_reg = len(cams.frames)
        meta.update(n_images=n_images, n_registered=n_reg, n_points=int(und.num_points3D()), mean_reprojection_error_px=err,
                    up_source=al.up_source, scale_source=al.scale_source, alignment_info=al.info,
                    max_image_size=opts.max_image_size, holdout_every=opts.holdout_every)
        if sfm_res is not None and sfm_res.gps_origin is not None:
            meta["gps_enu_origin_lat_lon_alt"] = list(sfm_res.gps_origin)
        save_scene_info(out / "scene.json", SceneInfo(WorldInfo(al.metric, al.scale, M), None, {}, meta))
        shutil.rmtree(work, ignore_errors=True)
    return PosesResult(workdir, n_images, n_reg, meta["n_points"], err, al.metric, al.scale_source, matcher, time.time() - t0, meta)


def _undistort(rec, image_dir: Path, out: Path, max_size: int | None, opts: PosesOptions):
    import pycolmap

    threads = opts.num_threads if opts.num_threads > 0 else default_threads()
    tmp_model = out / "_work" / "distorted"
    tmp_model.mkdir(parents=True, exist_ok=True)
    rec.write(tmp_model)
    uo = pycolmap.UndistortCameraOptions()
    if max_size:
        uo.max_image_size = int(max_size)
    und_dir = out / "_work" / "undistorted"
    pycolmap.undistort_images(und_dir, tmp_model, image_dir, output_type="COLMAP", undistort_options=uo, num_threads=threads)
    und = pycolmap.Reconstruction(und_dir / "sparse")
    shutil.move(str(und_dir / "images"), str(out / "images"))
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (out / "images").iterdir()):
        raise InputError("undistortion wrote no images")
    return und
