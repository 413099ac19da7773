"""Benchmark `realsim poses` on real scenes: wall time, registered images, reprojection error, points.

    python bench/poses.py                     # lund_street (auto + sequential), llff_fern, buddha at full size
    python bench/poses.py --max-image-size 800 --scenes lund_street
    python bench/poses.py --scenes lund_street synthetic_street --mappers incremental,global --out bench/results/poses_mappers.json
    python bench/poses.py --scenes lund_street_seq --mappers incremental,global,partitioned,partitioned:12 --threads 1 \
        --max-image-size 1024 --out bench/results/poses_partitioned_lund.json

Mappers: incremental, global, partitioned[:N] (recon/partition_sfm.py with chunks of N photos, default 24, a third
shared with the next; the others run unpartitioned). Real scenes whose photos carry EXIF GPS also get each row's camera
centres against the fixes (horizontal RMS after a 2-D similarity: an independent, metre-level check).

synthetic_street is the SYNTHETIC long street (sim.capture, street_length_m) photographed along --synthetic-walk-m metres
with exact cameras: its rows carry the pose error after a similarity alignment. With several mappers, later rows also
carry their cameras' disagreement with the first mapper's (same alignment).

Prints a table and writes bench/results/poses.json. Data comes from REALSIM_DATA (default ../shared/data beside the repo).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, data_root, load_avg, write_result

SCENES = {  # name -> (image folder under scenes/, matcher)
    "lund_street": ("lund_street/images", "auto"),
    "lund_street_seq": ("lund_street/images", "sequential"),
    "llff_fern": ("llff_fern/images_4", "auto"),
    "buddha": ("buddha/images", "auto"),
    "sacre_coeur": ("sacre_coeur/mapping", "auto"),
    "synthetic_street": ("", "auto"),  # rendered here (see --synthetic-*)
}


def synthetic_street(root: Path, walk_m: float, photos: int, width: int) -> Path:
    """The SYNTHETIC long street photographed along walk_m metres: root/capture/{images, cameras_gt.json}."""
    from realsim.sim.capture import CaptureConfig, make_capture

    return make_capture(root / "capture", CaptureConfig(n_images=photos, width=width, height=width * 3 // 4,
                                                        focal=400 * width / 480, walk_length=walk_m,
                                                        street_length_m=max(54.0, walk_m + 12.0)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", nargs="*", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--max-image-size", type=int, default=1600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mappers", default="incremental", help="comma list of incremental, global, partitioned[:N]")
    ap.add_argument("--synthetic-walk-m", type=float, default=100.0)
    ap.add_argument("--synthetic-photos", type=int, default=121)
    ap.add_argument("--synthetic-width", type=int, default=480)
    ap.add_argument("--out", type=Path, default=RESULTS / "poses.json")
    args = ap.parse_args()

    from realsim.assets.cameras import load_cameras
    from realsim.recon.poses import PosesOptions, run_poses
    from realsim.sim.capture import pose_error_vs_ground_truth

    data = data_root()
    if not data.is_dir():
        print(f"real data not found at {data}: set REALSIM_DATA", file=sys.stderr)
        return 2
    rows = []
    mappers = args.mappers.split(",")
    for name in args.scenes:
        rel, matcher = SCENES[name]
        with tempfile.TemporaryDirectory() as tmp:
            gt = None
            if name == "synthetic_street":
                cap = synthetic_street(Path(tmp), args.synthetic_walk_m, args.synthetic_photos, args.synthetic_width)
                src, gt = cap / "images", load_cameras(cap / "cameras_gt.json")
            else:
                src = data / "scenes" / rel
            if not src.is_dir():
                print(f"skipping {name}: {src} absent", file=sys.stderr)
                continue
            first = None
            gps = exif_enu(src) if gt is None else {}
            for mapper in mappers:
                load0 = load_avg()
                t0 = time.perf_counter()
                wd = Path(tmp) / f"wd_{mapper}"
                stages: dict[str, list[float]] = {}

                def prog(stage: str, done: int, total: int | None, info: dict) -> None:
                    now = time.perf_counter() - t0
                    stages.setdefault(stage, [now, now])[1] = now

                kind, _, size = mapper.partition(":")
                part = {"partition": "on", "chunk_size": int(size or 24)} if kind == "partitioned" else {"partition": "off"}
                res = run_poses(src, wd, PosesOptions(max_image_size=args.max_image_size, matcher=matcher,
                                                      num_threads=args.threads, seed=args.seed,
                                                      mapper="global" if kind == "global" else "incremental", **part),
                                progress=prog)
                dt = time.perf_counter() - t0
                cams = load_cameras(wd / "cameras.json")
                m = res.metadata
                row = {"scene": name, "mapper": mapper, "matcher": res.matcher, "images": res.n_images,
                       "registered": res.n_registered, "points": res.n_points, "reproj_px": round(res.mean_reproj_px, 3),
                       "seconds": round(dt, 1), "stage_end_s": {k: round(v[1], 1) for k, v in stages.items()},
                       "mapping_s": round(stages["mapping"][1] - stages["matching"][1], 1)
                       if "mapping" in stages and "matching" in stages else None,  # from the last match to the model
                       "pairs": m.get("n_pairs"), "cameras": m.get("n_cameras"),
                       "metric": res.metric, "scale_source": res.scale_source, "mapping_attempts": m.get("mapping_attempts"),
                       "load_avg_start": load0}  # the machine is shared: a high load average inflates the times
                if gt is not None:
                    row["synthetic"] = {"walk_m": args.synthetic_walk_m, "photos": args.synthetic_photos,
                                        "width": args.synthetic_width}
                    row["error_vs_exact"] = _rounded(pose_error_vs_ground_truth(cams, gt))
                elif gps:
                    row["vs_gps"] = gps_error(cams, gps)
                if first is not None:
                    row[f"vs_{first[0]}"] = _rounded(pose_error_vs_ground_truth(cams, first[1]))
                first = first or (mapper, cams)
                rows.append(row)
                e = row.get("error_vs_exact") or row.get(f"vs_{first[0]}") or {}
                if "vs_gps" in row:
                    print(f"  vs EXIF GPS: {row['vs_gps']}", flush=True)
                print(f"{name:16s} {mapper:11s} {row['matcher']:11s} {row['registered']:3d}/{row['images']:<3d} pairs "
                      f"{row['pairs']!s:>4s} points {row['points']:6d} reproj {row['reproj_px']:.3f} px  "
                      f"{row['seconds']:7.1f} s (mapping {row['mapping_s']} s)  centre rmse {e.get('centre_rmse_m', '-')} rot max {e.get('rotation_max_deg', '-')}",
                      flush=True)
    result = {"bench": "poses", "max_image_size": args.max_image_size, "load_avg_end": load_avg(), "rows": rows}
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


def exif_enu(folder: Path) -> dict:
    """name -> [2] east/north metres of the photos' EXIF GPS fixes (origin: the first), read with PIL."""
    import numpy as np
    from PIL import Image

    from realsim.recon.geodesy import lla_to_enu

    lla = {}
    for f in sorted(folder.iterdir()):
        try:
            with Image.open(f) as im:
                g = im.getexif().get_ifd(0x8825)
            lat = sum(float(v) / 60 ** i for i, v in enumerate(g[2])) * (-1 if g[1] == "S" else 1)
            lon = sum(float(v) / 60 ** i for i, v in enumerate(g[4])) * (-1 if g[3] == "W" else 1)
            lla[f.name] = np.array([lat, lon, float(g.get(6, 0.0))])
        except (OSError, KeyError, TypeError, ValueError):
            continue
    if not lla:
        return {}
    origin = lla[sorted(lla)[0]]
    return {n: lla_to_enu(v, origin)[:2] for n, v in lla.items()}


def gps_error(cams, gps: dict) -> dict:
    """Horizontal camera centres against the GPS fixes after the best 2-D similarity (recon.align.umeyama)."""
    import numpy as np

    from realsim.assets.frames import camera_center
    from realsim.recon.align import umeyama

    names = [f.name for f in cams.frames if f.name in gps]
    if len(names) < 3:
        return {}
    c = {f.name: camera_center(f.viewmat) for f in cams.frames}
    a = np.stack([c[n][:2] for n in names])  # [M,2] camera x, y (z up)
    b = np.stack([gps[n] for n in names])  # [M,2] east, north
    s, R, t = umeyama(a, b)
    res = np.linalg.norm(s * a @ R.T + t - b, axis=1)  # [M] metres
    return {"images": len(names), "rmse_m": round(float(np.sqrt((res ** 2).mean())), 3), "max_m": round(float(res.max()), 3),
            "scale": round(s, 4)}


def _rounded(d: dict) -> dict:
    return {k: round(float(v), 4) for k, v in d.items()}


if __name__ == "__main__":
    sys.exit(main())
