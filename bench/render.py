"""Benchmark `realsim render` speed: per-frame model render (decode + rasterize) and the whole video bundle
(render + H.264 encoding of 4 streams + 16-bit depth PNGs + normals) on a trained scene bundle.

    python bench/render.py SCENE                         # 1280x720, cpu backend, 10 frames of the interp path
    python bench/render.py SCENE --width 640 --height 360 --frames 20 --backend torch

The committed row used a briefly trained real scene:
    realsim train ../shared/data/scenes/llff_fern -o /tmp/fern --preset cpu-fast --max-minutes 12
    python bench/render.py /tmp/fern --frames 6 --label llff_fern_scaffold_253it

Prints a table and writes bench/results/render.json (one row per scene/size/backend; earlier rows for other
scenes or settings are kept).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, read_result, stamp, write_result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path, help="scene bundle folder (realsim train / reconstruct output)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--label", default=None, help="name of the scene in the table (default: folder name)")
    ap.add_argument("--note", default=None, help="how the scene was made (stored in the row, e.g. the train command)")
    ap.add_argument("--out", type=Path, default=RESULTS / "render.json")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from realsim.assets.errors import RealsimError
    from realsim.recon.bundle import load_scene
    from realsim.render.bundle import write_video_bundle
    from realsim.render.paths import interp_path

    try:
        scene = load_scene(args.scene)
    except RealsimError as e:
        print(f"bench/render.py: {e}", file=sys.stderr)
        return 2
    seconds = args.frames / 10.0
    path = interp_path(scene.cameras.frames, seconds, 10.0, args.width, args.height)
    model = scene.model
    n_anchors = getattr(model, "n_anchors", None)

    # warm-up (kernel build / first-call overheads) then time render alone, splitting decode from rasterization
    scene.render(path.viewmats[0], path.Ks[0], path.width, path.height, backend=args.backend)
    t_render, t_decode, n_splats = [], [], []
    for V, K in zip(path.viewmats, path.Ks):
        t0 = time.perf_counter()
        s = scene.splats(V, K, path.width, path.height)
        t1 = time.perf_counter()
        scene.render(V, K, path.width, path.height, backend=args.backend)
        t2 = time.perf_counter()
        t_decode.append(t1 - t0)
        t_render.append(t2 - t1)
        n_splats.append(len(s))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_video_bundle(lambda V, K, W, H: scene.render(V, K, W, H, backend=args.backend), path, Path(tmp) / "b")
        t_bundle = (time.perf_counter() - t0) / len(path)

    row = {
        "scene": args.label or args.scene.name, "model_kind": scene.kind, "anchors": n_anchors,
        "gaussians_per_frame": round(statistics.median(n_splats)), "width": path.width, "height": path.height,
        "backend": args.backend, "frames": len(path), "torch_threads": torch.get_num_threads(),
        "render_s_per_frame_median": round(statistics.median(t_render), 4),
        "render_fps": round(1.0 / statistics.median(t_render), 3),
        "decode_s_per_frame_median": round(statistics.median(t_decode), 4),
        "bundle_s_per_frame": round(t_bundle, 4),
        "scene_note": args.note,
        **stamp(),  # machine["load_avg"]: the machine may be shared, and load > cores inflates the times
    }
    print(f"{'scene':<28}{'kind':<10}{'size':<11}{'backend':<9}{'gauss/frame':>12}{'render s':>10}{'fps':>8}"
          f"{'decode s':>10}{'bundle s/frame':>16}")
    print(f"{row['scene']:<28}{row['model_kind']:<10}{path.width}x{path.height:<6}{args.backend:<9}"
          f"{row['gaussians_per_frame']:>12}{row['render_s_per_frame_median']:>10.3f}{row['render_fps']:>8.2f}"
          f"{row['decode_s_per_frame_median']:>10.3f}{row['bundle_s_per_frame']:>16.3f}")
    old = read_result(args.out, {})
    rows = old.get("rows", []) if isinstance(old, dict) else []
    key = lambda r: (r.get("scene"), r.get("width"), r.get("height"), r.get("backend"))  # noqa: E731
    rows = [r for r in rows if key(r) != key(row)] + [row]
    write_result(args.out, {"benchmark": "render", "rows": rows}, stamp_it=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
