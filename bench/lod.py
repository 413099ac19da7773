"""Level of detail (recon/lod.py) on a trained Scaffold scene: Gaussians drawn, render seconds (decode + rasterize) and
PSNR against the exact render, for views at growing distance, with LOD off and at 1 and 2 pixels of error.

    python bench/lod.py SCENE [--width 480 --height 360 --focal 400] [--backend cpu] [--repeat 3]

Views: the scene's first camera (street level, looking along it), then oblique views (45 degrees down, along the
cameras' main direction) of the anchors' centre from 10, 20, 40, 80, 160 m. The committed row used the demo's SYNTHETIC
street scene (`realsim demo -o /tmp/demo0`, SCENE = /tmp/demo0/scene). Also the cost of a merged --blocks scene's
decoders for 1..64 blocks: stacked (the bundle's exact MLPs) vs per block (merge.compact_decoders, which --lod uses).
Results: bench/results/lod.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, load_avg, write_result


def views(scene, width: int, height: int, focal: float, distances: list[float]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, viewmat [4,4], K [3,3]) per view."""
    from realsim.assets.frames import camera_center
    from realsim.render.paths import look_at

    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    frames = sorted(scene.cameras.frames, key=lambda f: f.name)
    out = [("first camera", np.asarray(frames[0].viewmat, np.float64), K)]
    C = camera_center(np.stack([f.viewmat for f in frames]))  # [N,3]
    d = C[:, :2] - C[:, :2].mean(0)
    u = np.linalg.svd(d, full_matrices=False)[2][0] if len(C) > 1 else np.array([1.0, 0.0])
    centre = scene.model.anchors.detach().double().numpy().mean(0)
    for dist in distances:
        eye = centre + dist * np.array([-u[0] * 0.7071, -u[1] * 0.7071, 0.7071])
        out.append((f"oblique {dist:g} m", look_at(eye, centre), K))
    return out


def decoder_rows(n_anchors: int, blocks: list[int], repeat: int) -> list[dict]:
    """Seconds to run a merged scene's three decoders on n_anchors anchors: stacked (the bundle's exact MLPs, B-fold
    wider) vs per block (merge.compact_decoders), for B blocks of random weights."""
    import torch

    from realsim.recon.merge import compact_decoders, merge_models
    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

    rows = []
    g = torch.Generator().manual_seed(0)
    for B in blocks:
        parts = []
        for b in range(B):
            m = ScaffoldModel(ScaffoldConfig(), n_anchors // B)
            t = {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in m.state_dict().items()}
            parts.append(t)
        cfgs = [ScaffoldConfig().to_dict()] * B
        stacked = merge_models("scaffold", cfgs, parts)
        compact = compact_decoders(merge_models("scaffold", cfgs, parts))
        x = torch.cat([stacked.anchor_feat.detach(), torch.nn.functional.normalize(torch.randn(len(stacked.anchor_feat), 3,
                                                                                               generator=g), dim=1)], 1)
        res = {"blocks": B, "anchors": int(len(x))}
        for name, m in (("stacked_s", stacked), ("per_block_s", compact)):
            times = []
            with torch.no_grad():
                for _ in range(repeat + 1):
                    t0 = time.perf_counter()
                    outs = [getattr(m, k)(x) for k in ("mlp_opacity", "mlp_cov", "mlp_color")]
                    times.append(time.perf_counter() - t0)
            res[name] = round(statistics.median(times[1:]), 4)
            res.setdefault("outputs", outs)
        res["max_abs_diff"] = float(max((a - b).abs().max() for a, b in zip(res.pop("outputs"), outs)))
        rows.append(res)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path, nargs="?", help="a trained Scaffold scene bundle (omit with --decoders-only)")
    ap.add_argument("--decoders", default="1,4,16,64", help="block counts for the stacked vs per-block decoder rows")
    ap.add_argument("--decoder-anchors", type=int, default=40000)
    ap.add_argument("--decoders-only", action="store_true")
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--focal", type=float, default=400.0)
    ap.add_argument("--distances", default="10,20,40,80,160")
    ap.add_argument("--pixel-errors", default="1,2,4", help="LOD settings to compare with the exact render")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "lod.json")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from realsim.assets.errors import RealsimError
    from realsim.recon.bundle import load_scene, render_splats
    from realsim.recon.lod import LODConfig, with_lod
    from realsim.recon.metrics import psnr

    dec = decoder_rows(a.decoder_anchors, [int(x) for x in a.decoders.split(",")], a.repeat)
    print("| blocks | anchors | stacked decoders s | per-block decoders s | max abs diff |")
    print("|---|---|---|---|---|")
    for r in dec:
        print(f"| {r['blocks']} | {r['anchors']} | {r['stacked_s']:.3f} | {r['per_block_s']:.3f} | {r['max_abs_diff']:.1e} |")
    if a.decoders_only or a.scene is None:
        write_result(a.out, {"decoders": dec, "threads": a.threads, "load_avg_after": load_avg()})
        return 0
    try:
        scene = load_scene(a.scene)
    except RealsimError as e:
        print(f"bench/lod.py: {e}", file=sys.stderr)
        return 2
    settings = [("exact", scene.model, None)] + [(f"lod {pe:g} px", None, LODConfig(a.levels, pe))
                                                 for pe in (float(x) for x in a.pixel_errors.split(","))]
    models, build_s = {}, {}
    for name, m, cfg in settings:
        t = time.perf_counter()
        models[name] = m if cfg is None else with_lod(scene.model, cfg)
        build_s[name] = round(time.perf_counter() - t, 2)
    rows = []
    for label, V, K in views(scene, a.width, a.height, a.focal, [float(x) for x in a.distances.split(",")]):
        Vt, Kt = torch.tensor(V, dtype=torch.float32), torch.tensor(K, dtype=torch.float32)
        ref = None
        for name, _, _ in settings:
            times = []
            for _ in range(a.repeat + 1):  # the first is a warm-up
                t = time.perf_counter()
                with torch.no_grad():
                    splats, info = models[name].decode(Vt, Kt, a.width, a.height, backend=a.backend)
                    rgb = render_splats(splats, Vt, Kt, a.width, a.height, a.backend)["rgb"]
                times.append(time.perf_counter() - t)
            ref = rgb if ref is None else ref
            p = psnr(rgb, ref)
            rows.append({"view": label, "setting": name, "gaussians": len(splats),
                         "anchors_drawn": int(info["anchor_idx"].numel()), "render_s": round(statistics.median(times[1:]), 4),
                         "psnr_vs_exact": None if not np.isfinite(p) else round(float(p), 2)})
    print(f"| view | setting | Gaussians | anchors drawn | render s | PSNR vs exact dB |  (load {load_avg()})")
    print("|---|---|---|---|---|---|")
    for r in rows:
        p = "exact" if r["psnr_vs_exact"] is None else f"{r['psnr_vs_exact']:.1f}"
        print(f"| {r['view']} | {r['setting']} | {r['gaussians']} | {r['anchors_drawn']} | {r['render_s']:.3f} | {p} |")
    lod_rows = {k: len(getattr(m, "reps", [])) for k, m in models.items()}
    write_result(a.out, {"scene": a.label or str(a.scene), "anchors": scene.model.n_anchors,
                         "size": [a.width, a.height], "focal": a.focal, "backend": a.backend, "threads": a.threads,
                         "coarse_levels": lod_rows, "lod_build_s": build_s,
                         "coarse_anchors": {k: [len(r) for r in getattr(m, "reps", [])] for k, m in models.items()},
                         "rows": rows, "decoders": dec, "load_avg_after": load_avg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
