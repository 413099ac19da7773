"""Partitioned mapping of a long ordered sequence: overlapping chunks mapped separately, merged into one frame, one global BA.

Why: a thin forward walk has weak links (photos of a blank facade: 20-40 inliers across them). The global mapper (rotation
averaging + global positioning) bends the track there: on the SYNTHETIC 100 m street walk one 12-photo window lands 5.6 m
off (bench/loops.py); pycolmap's hierarchical mapper, which cuts the match graph rather than the sequence, merges its
clusters 13 m off; whole-walk incremental mapping is right on 100 m but on 200 m registers across two weak links wrongly
(58 m RMS), and its cost grows faster than linearly. Here chunks of `chunk_size` consecutive photos sharing
`chunk_overlap` with the next are mapped incrementally, each from initial pairs 3 photos apart until two runs agree
(COLMAP's own pick, often two neighbours of a forward walk, folds chunks several metres off), chunks after the first
holding the lens (focal, distortion) of those merged so far (on their own, short chunks of a sparse real walk fit
lenses of their own and fold or fail: lund_street in 12-photo chunks, 4.4 m off whole-walk mapping, 0.16 m held);
chunk k is brought into the frame before it by a similarity fitted on the shared images (rotation from their
orientations, scale + shift from their centres, so a straight walk's collinear centres do not leave the roll free); a
chunk sharing < 3 registered images starts a new component, and the largest is kept (a break is not bridged with a
guess; with GPS, gps_bridge.py places components by their fixes). Each image keeps the pose of the chunk where it is
most central; points are triangulated through the whole database with those poses and one bundle adjustment
(pycolmap's) refines poses, intrinsics and points together.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np

from realsim.assets.progress import ProgressFn, report

__all__ = ["chunk_ranges", "fit_chunk_similarity", "map_partitioned"]

log = logging.getLogger("realsim.recon.partition_sfm")


def chunk_ranges(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) index ranges of `size` consecutive images, consecutive ones sharing >= `overlap`, spread over 0..n."""
    if size <= overlap or overlap < 3:
        raise ValueError(f"chunk size {size} must exceed an overlap of at least 3 (got {overlap})")
    if n <= size:
        return [(0, n)]
    k = math.ceil((n - overlap) / (size - overlap))
    starts = np.round(np.linspace(0, n - size, k)).astype(int)
    return [(int(s), int(s) + size) for s in starts]


def _chordal_mean(Rs: list[np.ndarray]) -> np.ndarray:
    """Rotation nearest (Frobenius) to the mean of rotation matrices."""
    U, _, Vt = np.linalg.svd(np.sum(Rs, axis=0))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def _angle_deg(R: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip((np.trace(R) - 1) / 2, -1, 1))))


def fit_chunk_similarity(R_src: np.ndarray, C_src: np.ndarray, R_tgt: np.ndarray, C_tgt: np.ndarray,
                         max_rot_deg: float = 5.0) -> tuple[float, np.ndarray, np.ndarray, int]:
    """Similarity x_tgt = s R x_src + t from images posed in both frames: R_* [M,3,3] camera-from-world rotations,
    C_* [M,3] camera centres. R is the chordal mean of R_tgt^T R_src (images disagreeing by > max_rot_deg dropped), then
    s, t by least squares on the centres with R fixed, refitted once without centres off by > 3x the median residual.
    Returns (s, R, t, inliers)."""
    per = [rt.T @ rs for rs, rt in zip(R_src, R_tgt)]  # [M] world_tgt-from-world_src rotation seen by each image
    R = _chordal_mean(per)
    keep = np.array([_angle_deg(R.T @ p) <= max_rot_deg for p in per])
    if keep.sum() >= 2:
        R = _chordal_mean([p for p, k in zip(per, keep) if k])
    else:
        keep[:] = True
    A = C_src @ R.T  # [M,3] rotated source centres
    for _ in range(2):
        a, b = A[keep], C_tgt[keep]
        da, db = a - a.mean(0), b - b.mean(0)
        s = float((da * db).sum() / max((da * da).sum(), 1e-12))
        t = b.mean(0) - s * a.mean(0)
        res = np.linalg.norm(s * A + t - C_tgt, axis=1)
        med = float(np.median(res[keep]))
        new = keep & (res <= 3 * med + 1e-9 * max(1.0, float(np.abs(C_tgt).max())))
        if new.sum() < 2 or new.sum() == keep.sum():
            break
        keep = new
    return s, R, t, int(keep.sum())


def _poses(rec) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """name -> (R_cw [3,3], centre [3], camera_id) of a reconstruction's registered images."""
    out = {}
    for im in rec.images.values():
        if not im.has_pose:
            continue
        T = im.cam_from_world()
        R = np.asarray(T.rotation.matrix())
        out[im.name] = (R, -R.T @ np.asarray(T.translation), im.camera_id)
    return out


def map_partitioned(db: Path, image_dir: Path, work: Path, opts, names: list[str],
                    progress: ProgressFn | None = None,
                    gps: dict[str, np.ndarray] | None = None) -> tuple[object, list[dict]]:
    """Chunks of the ordered `names` mapped incrementally, merged in chunk 0's frame, triangulated and bundle adjusted
    as one model. `opts` is an sfm.SfmOptions. Returns (reconstruction or None, attempts: one row per chunk + the merge).
    With GPS (name -> east/north/up metres) a break's components are placed by their fixes (gps_bridge.py) and kept
    together. Under partition "auto", a merge keeping under half the images falls back to whole-sequence incremental mapping."""
    import pycolmap

    from . import sfm

    ranges = chunk_ranges(len(names), opts.chunk_size, opts.chunk_overlap)
    attempts: list[dict] = []
    comps: list[dict] = []  # connected runs of chunks, each {name: (R_cw, centre, camera_id, rank)} in its 1st chunk's frame
    comp_points: list[list[np.ndarray]] = []  # per component: sparse points [P,3] of its chunks in its frame (ground plane)
    cam_params: dict[int, list[np.ndarray]] = {}
    cams: dict[int, object] = {}
    with pycolmap.Database.open(str(db)) as d:
        images = d.read_all_images()
        ids = {im.name: im.image_id for im in images}
        cam_of = {im.name: im.camera_id for im in images}
        cams0 = d.read_all_cameras()  # as extracted (EXIF priors): restored for a whole-sequence fallback
        inliers = {}  # (i, j) sequence indices -> verified inliers, for the initial pairs
        for i in range(len(names) - 3):
            a, b = ids[names[i]], ids[names[i + 3]]
            inliers[i] = len(d.read_two_view_geometry(a, b).inlier_matches) if d.exists_two_view_geometry(a, b) else 0
    for k, (a, b) in enumerate(ranges):
        part = names[a:b]
        fixed = bool(cam_params) and all(cam_of[x] in cam_params for x in part)
        if fixed:  # the lens found so far, held: short chunks of a sparse walk fit lenses of their own and fold or fail
            _write_cameras(db, cams, cam_params, {cam_of[x] for x in part})
        rec, row = _map_chunk(db, image_dir, work / f"chunk_{k:03d}", opts, part, ids, [inliers.get(a + i, 0) for i in range(b - a)],
                              fixed_intrinsics=fixed)
        row = {"chunk": k, "first": a, "images": len(part), "fixed_intrinsics": fixed} | row
        report(progress, "mapping", k + 1, len(ranges), chunks=len(ranges))
        if rec is None or rec.num_reg_images() < 3:
            attempts.append(row | {"merged": False})
            continue
        P = _poses(rec)
        merged = comps[-1] if comps else {}
        shared = [x for x in P if x in merged]
        s, R, t = 1.0, np.eye(3), np.zeros(3)
        if len(shared) >= 3:
            s, R, t, inl = fit_chunk_similarity(np.stack([P[x][0] for x in shared]), np.stack([P[x][1] for x in shared]),
                                                np.stack([merged[x][0] for x in shared]), np.stack([merged[x][1] for x in shared]))
            row |= {"shared": len(shared), "inliers": inl, "scale": s}
        else:  # a break in the sequence (nothing registered across it): a new component; the largest is kept
            if comps:
                log.warning("chunk %d shares %d registered images with the one before: a new component", k, len(shared))
            merged = {}
            comps.append(merged)
            comp_points.append([])
        if gps:  # a sample of its points for the GPS bridge's ground plane (gps_bridge.py)
            xyz = np.array([p.xyz for p in rec.points3D.values()], np.float64).reshape(-1, 3)  # [P,3] chunk frame
            xyz = xyz[np.random.default_rng(k).permutation(len(xyz))[:2000]]
            comp_points[-1].append(s * xyz @ R.T + t)
        idx = {x: i for i, x in enumerate(part)}
        for x, (Rc, Cc, cid) in P.items():  # a pose from the chunk that registered more, then where the image is more central
            rank = (len(P), min(idx[x], len(part) - 1 - idx[x]))
            if x not in merged or rank > merged[x][3]:
                merged[x] = (Rc @ R.T, s * R @ Cc + t, cid, rank)  # R_cw' = R_cw R^T maps the target world into the camera
        for cid, cam in rec.cameras.items():  # intrinsics: median over registered images, so a poor chunk cannot steer it
            cams.setdefault(cid, cam)
            n_cid = sum(1 for v in P.values() if v[2] == cid)
            cam_params.setdefault(cid, []).extend([np.asarray(cam.params, np.float64)] * n_cid)
        attempts.append(row | {"merged": True, "component": len(comps) - 1})
        shutil.rmtree(work / f"chunk_{k:03d}", ignore_errors=True)
    best = max(comps, key=len, default={})
    info: dict = {"components": [len(c) for c in comps]}
    if len(comps) > 1 and gps:
        from .gps_bridge import BridgeConfig, bridge_components

        pts = [np.concatenate(c) if c else np.zeros((0, 3)) for c in comp_points]
        bridged, rows = bridge_components(comps, pts, gps, BridgeConfig(seed=opts.seed))
        info["gps_bridge"] = rows
        if len(bridged) > len(best):
            best = bridged
            log.warning("GPS placed %d of %d components (%d images) in one frame across the sequence's breaks",
                        sum(r["placed"] for r in rows), len(comps), len(bridged))
    if len(best) < 0.5 * len(names) and opts.partition == "auto":  # chosen, not asked for: whole-sequence mapping instead
        log.warning("partitioned mapping kept %d of %d images; mapping the whole sequence instead", len(best), len(names))
        with pycolmap.Database.open(str(db)) as d:
            for c in cams0:
                d.update_camera(c)
        rec, tries = sfm.map_incremental(db, image_dir, work / "whole", opts, len(names), progress)
        return rec, attempts + [{"fallback": "incremental"} | t for t in tries]
    if len(best) < 3:
        return None, attempts
    rec = _merge(db, image_dir, work, opts, best, ids, cams, cam_params, info)
    n_reg = rec.num_reg_images()
    err = rec.compute_mean_reprojection_error() if rec.num_points3D() else float("nan")
    attempts.append({"merge": True, "chunks": len(ranges), "registered": n_reg, "reproj_px": err} | info)
    return rec, attempts


def _agreement(P: dict, Q: dict) -> float:
    """How far two models of the same images disagree: RMS centre residual after a similarity fit, over the extent."""
    common = sorted(set(P) & set(Q))
    if len(common) < 3:
        return math.inf
    Rp, Cp = np.stack([P[x][0] for x in common]), np.stack([P[x][1] for x in common])
    Rq, Cq = np.stack([Q[x][0] for x in common]), np.stack([Q[x][1] for x in common])
    s, R, t, _ = fit_chunk_similarity(Rp, Cp, Rq, Cq)
    res = np.linalg.norm(s * Cp @ R.T + t - Cq, axis=1)
    extent = float(np.linalg.norm(Cq - Cq.mean(0), axis=1).max())
    return float(np.sqrt((res ** 2).mean()) / max(extent, 1e-12))


def _write_cameras(db: Path, cams: dict, cam_params: dict, cids: set[int]) -> None:
    """The database's cameras `cids` set to the per-parameter median of the chunks merged so far (mapping starts there)."""
    import pycolmap

    with pycolmap.Database.open(str(db)) as d:
        for cid in cids:
            c = pycolmap.Camera(cams[cid].todict())
            c.params = np.median(np.stack(cam_params[cid]), axis=0)  # [P]
            d.update_camera(c)


def _map_chunk(db: Path, image_dir: Path, work: Path, opts, part: list[str], ids: dict[str, int], gap_inliers: list[int],
               agree: float = 0.02, gap: int = 3, tries: int = 3, fixed_intrinsics: bool = False) -> tuple[object, dict]:
    """One chunk mapped incrementally from initial pairs `gap` photos apart (gap_inliers[i]: verified inliers of photos
    i, i + gap; the best-matched ones of the middle half first, then COLMAP's own pick) until two runs agree.

    A forward walk's chunk started from a poor pair (COLMAP's pick is often two neighbouring photos) folds into a wrong
    but self-consistent model; runs from different pairs fold differently, so agreement of two marks a good one. When no
    two agree, the run with the lowest reprojection error among those registering the most is kept."""
    import pycolmap

    from . import sfm

    n = len(part)
    mid = [i for i in range(n // 4, 3 * n // 4) if i + gap < n and gap_inliers[i] >= 30]
    pairs = [(i, i + gap) for i in sorted(mid, key=lambda i: -gap_inliers[i])[:tries]] + [(-1, -1)]
    runs: list[tuple[object, dict, float, dict]] = []  # (model, row, reprojection error, its poses)
    for t, (i, j) in enumerate(pairs):
        o = sfm._mapper_options(opts, relaxed=True)
        o.image_names = list(part)
        o.multiple_models = False  # else photos left over (a blank facade) start up to 50 futile models: minutes of CPU
        if fixed_intrinsics:
            o.ba_refine_focal_length = o.ba_refine_extra_params = False
        if i >= 0:
            o.init_image_id1, o.init_image_id2 = ids[part[i]], ids[part[j]]
        out = work / f"try_{t}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        pycolmap.set_random_seed(opts.seed)
        level, pycolmap.logging.minloglevel = pycolmap.logging.minloglevel, 3  # a failed try is expected: no glog line
        try:
            recs = pycolmap.incremental_mapping(db, image_dir, out, options=o)
        finally:
            pycolmap.logging.minloglevel = level
        rec = max(recs.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()), default=None)
        if rec is None or rec.num_reg_images() < 3 or not all(_plausible(c) for c in rec.cameras.values()):
            continue
        err = rec.compute_mean_reprojection_error() if rec.num_points3D() else math.inf
        P = _poses(rec)
        for r0, _row, _, P0 in runs:
            d = _agreement(P, P0)
            if d <= agree and rec.num_reg_images() >= 0.9 * r0.num_reg_images():
                return rec, {"registered": rec.num_reg_images(), "reproj_px": err, "tries": t + 1, "agreement": d}
        runs.append((rec, {"registered": rec.num_reg_images(), "reproj_px": err, "tries": t + 1}, err, P))
    if not runs:
        return None, {"registered": 0, "tries": len(pairs)}
    rec, row, _, _ = min(runs, key=lambda r: (-r[0].num_reg_images(), r[2]))
    return rec, row | {"tries": len(pairs), "agreement": None}


def _plausible(cam) -> bool:
    """A chunk folded onto a wrong model often buys it with a wild lens (focal far off, radial k of several units)."""
    extra = np.abs(np.asarray(cam.params, np.float64)[list(cam.extra_params_idxs())])  # [E] distortion terms
    return bool(0.2 < cam.mean_focal_length() / max(cam.width, cam.height) < 5.0 and (extra <= 0.5).all())


def _merge(db: Path, image_dir: Path, work: Path, opts, merged: dict, ids: dict[str, int], cams: dict, cam_params: dict,
           info: dict):
    """One reconstruction from the merged poses (median intrinsics per camera): points triangulated through the whole
    database with the poses held, then one global bundle adjustment of poses, intrinsics and points."""
    import pycolmap

    from . import sfm

    new = pycolmap.Reconstruction()
    used = {v[2] for v in merged.values()}
    for cid, cam in ((c, x) for c, x in cams.items() if c in used):
        c = pycolmap.Camera(cam.todict())
        c.params = np.median(np.stack(cam_params[cid]), axis=0)  # [P] per-parameter median
        new.add_camera_with_trivial_rig(c)
    with pycolmap.Database.open(str(db)) as d:
        for name, (R, C, cid, _) in sorted(merged.items()):
            kp = np.asarray(d.read_keypoints(ids[name])[:, :2], np.float64)
            im = pycolmap.Image(name=name, keypoints=kp, camera_id=cid, image_id=ids[name])
            pose = pycolmap.Rigid3d(pycolmap.Rotation3d(R), -R @ C)
            new.add_image_with_trivial_frame(im, pose)
    out = work / "merged"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    po = sfm._mapper_options(opts, relaxed=False)
    c0 = time.process_time()
    rec = pycolmap.triangulate_points(new, db, image_dir, out, clear_points=True, options=po, refine_intrinsics=False)
    info["triangulate_cpu_s"] = round(time.process_time() - c0, 1)
    info["reproj_px_before_ba"] = rec.compute_mean_reprojection_error()
    c0 = time.process_time()
    bo = pycolmap.BundleAdjustmentOptions()
    bo.print_summary = False
    bo.refine_principal_point = False
    bo.ceres.solver_options.num_threads = sfm._threads(opts)
    bo.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY  # a few wrong tracks must not pull the merged model
    pycolmap.bundle_adjustment(rec, bo)
    info["ba_cpu_s"] = round(time.process_time() - c0, 1)
    return rec
