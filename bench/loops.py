"""Loop-closure aliasing (issue 20, recon/loops.py): SfM of a walk along the SYNTHETIC long street, whose props repeat
every 48 m, with the same features and matches mapped three times: every verified pair as matched, after check_loops
dropped the aliased loop pairs, and with no loop pairs at all. Camera error against the exact cameras after a
similarity fit, per run and per window.

    python bench/loops.py [--walk-m 100] [--photos 61] [--width 320] [--mapper global|incremental|partitioned]
        [--rows all_pairs,loop_check,sequential_only] [--keep DIR] [--gps-sigma M]
        -> bench/results/loops.json (loops_<mapper>.json for other mappers)
partitioned: recon/partition_sfm.py (overlapping chunks mapped incrementally, merged, one bundle adjustment).
--gps-sigma: the photos carry EXIF GPS (true centre + N(0, M) east/north, N(0, 2M) up) and the partitioned mapper
places a break's components by it (recon/gps_bridge.py).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, load_avg, write_result


def _cameras(rec, gt):
    """The registered images of a pycolmap reconstruction as a CameraSet (the exact K: only the poses are compared)."""
    from realsim.assets.cameras import CameraFrame, CameraSet
    from realsim.recon.colmap_io import viewmat_of

    g = {f.name: f for f in gt.frames}
    return CameraSet([CameraFrame(im.name, g[im.name].K, viewmat_of(im), g[im.name].width, g[im.name].height)
                      for im in rec.images.values() if im.name in g])


def _report(rec, gt, window: int) -> dict:
    from realsim.assets.cameras import CameraSet
    from realsim.sim.capture import pose_error_vs_ground_truth

    if rec is None:
        return {"registered": 0}
    est = _cameras(rec, gt)
    names = sorted(f.name for f in gt.frames)
    wins = []
    for s in range(0, len(names) - window + 1, window):
        keep = set(names[s:s + window])
        e = pose_error_vs_ground_truth(CameraSet([f for f in est.frames if f.name in keep]), gt)
        wins.append(round(e.get("centre_rmse_m", float("nan")), 3))
    whole = pose_error_vs_ground_truth(est, gt)
    return {"registered": len(est.frames), "centre_rmse_m": round(whole.get("centre_rmse_m", float("nan")), 3),
            "centre_max_m": round(whole.get("centre_max_m", float("nan")), 3),
            "rotation_max_deg": round(whole.get("rotation_max_deg", float("nan")), 2), "window_centre_rmse_m": wins}


def _drop_loops(db: Path, names: list[str], pairs: list[tuple[str, str]], overlap: int) -> None:
    """Every pair further apart than the sequential overlap removed (no loop closure at all), for comparison."""
    import pycolmap

    index = {x: k for k, x in enumerate(names)}
    with pycolmap.Database.open(str(db)) as d:
        ids = {im.name: im.image_id for im in d.read_all_images()}
        for x, y in pairs:
            if abs(index[x] - index[y]) > overlap and d.exists_two_view_geometry(ids[x], ids[y]):
                d.delete_two_view_geometry(ids[x], ids[y])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walk-m", type=float, default=100.0)
    ap.add_argument("--photos", type=int, default=61)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--mapper", choices=["global", "incremental", "partitioned"], default="global")
    ap.add_argument("--rows", default="all_pairs,loop_check,sequential_only", help="which pair sets to map (comma list)")
    ap.add_argument("--window", type=int, default=12, help="photos per window of the per-window error")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the capture, databases and maps in this folder")
    ap.add_argument("--gps-sigma", type=float, default=None, help="EXIF GPS noise (m) in the photos; default: no GPS")
    a = ap.parse_args()
    a.out = a.out or RESULTS / ("loops.json" if a.mapper == "global" else f"loops_{a.mapper}.json")

    from realsim.assets.cameras import load_cameras
    from realsim.recon import sfm
    from realsim.recon.inputs import StagedImages
    from realsim.recon.loops import check_loops
    from realsim.sim.capture import CaptureConfig, make_capture

    rows = {}
    with tempfile.TemporaryDirectory() as td:
        root = Path(td) if a.keep is None else a.keep
        root.mkdir(parents=True, exist_ok=True)
        cap = make_capture(root / "capture", CaptureConfig(n_images=a.photos, width=a.width, height=a.width * 3 // 4,
                                                           focal=400 * a.width / 480, walk_length=a.walk_m,
                                                           street_length_m=max(54.0, a.walk_m + 12.0),
                                                           gps_sigma_m=a.gps_sigma))
        gt = load_cameras(cap / "cameras_gt.json")
        names = sorted(p.name for p in (cap / "images").iterdir())
        opts = sfm.SfmOptions(num_threads=1, single_camera=True, mapper="global" if a.mapper == "global" else "incremental")
        db = root / "database.db"
        c0 = time.process_time()
        sfm.extract(StagedImages(cap / "images", names, [], {n: (1,) for n in names}), db, opts)
        pairs = sfm.make_pairs(names, "sequential", opts, db, {})
        sfm.match(db, pairs, root, opts)
        match_cpu = time.process_time() - c0
        gps = sfm.read_gps(db)[0] if a.gps_sigma is not None else {}
        shutil.copy(db, root / "unchecked.db")
        shutil.copy(db, root / "sequential.db")
        _drop_loops(root / "sequential.db", names, pairs, opts.overlap)
        loops = check_loops(db, names, pairs, opts.overlap, opts.loop_min_inliers)
        for label, path in (("all_pairs", root / "unchecked.db"), ("loop_check", db),
                            ("sequential_only", root / "sequential.db")):
            if label not in a.rows.split(","):
                continue
            c = time.process_time()
            work = root / label
            work.mkdir()
            if a.mapper == "partitioned":
                from realsim.recon.partition_sfm import map_partitioned

                rec, att = map_partitioned(path, cap / "images", work, opts, names, gps=gps)
            else:
                rec, att = (sfm.map_global if a.mapper == "global" else sfm.map_incremental)(path, cap / "images", work, opts,
                                                                                               len(names))
            err = rec.compute_mean_reprojection_error() if rec is not None and rec.num_points3D() else float("nan")
            rows[label] = _report(rec, gt, a.window) | {"mapping_cpu_s": round(time.process_time() - c, 1),
                                                        "reproj_px": round(err, 3), "attempts": att}
            print(f"{label:15s}: " + str({k: v for k, v in rows[label].items() if k != "attempts"}), flush=True)
    n_loop = loops.to_dict()
    print(f"pairs {len(pairs)}, loop pairs {n_loop['loop_pairs']}: kept {n_loop['kept']}, rejected {n_loop['rejected']};"
          f" features + matching {match_cpu:.0f} CPU s, load {load_avg()}")
    write_result(a.out, {"scene": {"synthetic": True, "walk_m": a.walk_m, "photos": a.photos, "width": a.width,
                                   "label": "SYNTHETIC long street (props every 48 m)", "gps_sigma_m": a.gps_sigma},
                         "mapper": a.mapper, "pairs": len(pairs), "loops": n_loop, "match_cpu_s": round(match_cpu, 1),
                         "rows": rows, "load_avg_after": load_avg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
