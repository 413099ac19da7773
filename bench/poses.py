"""Benchmark `realsim poses` on real scenes: wall time, registered images, reprojection error, points.

    python bench/poses.py                     # lund_street (auto + sequential), llff_fern, buddha at full size
    python bench/poses.py --max-image-size 800 --scenes lund_street

Prints a table and writes bench/results/poses.json. Data comes from REALSIM_DATA (default ../shared/data beside the repo).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, RESULTS, load_avg, write_result

SCENES = {  # name -> (image folder under scenes/, matcher)
    "lund_street": ("lund_street/images", "auto"),
    "lund_street_seq": ("lund_street/images", "sequential"),
    "llff_fern": ("llff_fern/images_4", "auto"),
    "buddha": ("buddha/images", "auto"),
    "sacre_coeur": ("sacre_coeur/mapping", "auto"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", nargs="*", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--max-image-size", type=int, default=1600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "poses.json")
    args = ap.parse_args()

    from realsim.recon.poses import PosesOptions, run_poses

    data = Path(os.environ.get("REALSIM_DATA", REPO.parent / "shared" / "data"))
    if not data.is_dir():
        print(f"real data not found at {data}: set REALSIM_DATA", file=sys.stderr)
        return 2
    rows = []
    for name in args.scenes:
        rel, matcher = SCENES[name]
        src = data / "scenes" / rel
        if not src.is_dir():
            print(f"skipping {name}: {src} absent", file=sys.stderr)
            continue
        load0 = load_avg()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = run_poses(src, Path(tmp) / "wd", PosesOptions(max_image_size=args.max_image_size, matcher=matcher,
                                                                num_threads=args.threads))
            dt = time.perf_counter() - t0
        m = res.metadata
        rows.append({"scene": name, "matcher": res.matcher, "images": res.n_images, "registered": res.n_registered,
                     "points": res.n_points, "reproj_px": round(res.mean_reproj_px, 3), "seconds": round(dt, 1),
                     "pairs": m.get("n_pairs"), "cameras": m.get("n_cameras"), "metric": res.metric, "scale_source": res.scale_source,
                     "mapping_attempts": m.get("mapping_attempts"),
                     "load_avg_start": load0})  # the machine is shared: a high load average inflates the times
        r = rows[-1]
        print(f"{name:16s} {r['matcher']:11s} {r['registered']:3d}/{r['images']:<3d} pairs {r['pairs']!s:>4s} "
              f"points {r['points']:6d} reproj {r['reproj_px']:.3f} px  {r['seconds']:7.1f} s", flush=True)
    result = {"bench": "poses", "max_image_size": args.max_image_size, "load_avg_end": load_avg(), "rows": rows}
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
