"""Where a trained scene's held-out error lies: PSNR of each held-out view by horizontal band of the image (top to bottom)
and the bottom third's share of the squared error (issue 12: on the demo's forward walk the nearest ground, at the
bottom of a view, is seen by the training photos only from further back, i.e. at a coarser scale).

    python bench/heldout_bands.py --scene realsim_demo/scene [--bands 6] [--figure docs/demo_frames/heldout_08.png --view 1]

Prints a table and writes bench/results/heldout_bands.json; --figure writes render | photo | 4x error of one held-out view.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import RESULTS, write_result


def _psnr(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def ground_scale_ratio(frame, train, bands: int, step: int = 6) -> list[float | None]:
    """Per band: median over the band's ground pixels (z = 0, exact cameras) of the held-out camera's distance over the
    nearest training camera's that sees the point (< 1: the held-out view sees the ground finer than any photo)."""
    from realsim.assets.frames import camera_center

    V, K, H, W = np.asarray(frame.viewmat), np.asarray(frame.K), frame.height, frame.width
    C, out = camera_center(V), []
    for b in range(bands):
        X, Y = np.meshgrid(np.arange(0, W, step) + 0.5, np.arange(b * H // bands, (b + 1) * H // bands, step) + 0.5)
        d = np.stack([(X - K[0, 2]) / K[0, 0], (Y - K[1, 2]) / K[1, 1], np.ones_like(X)], -1).reshape(-1, 3) @ V[:3, :3]
        down = d[:, 2] < 0
        P = C + (-C[2] / d[down, 2])[:, None] * d[down]  # [n,3] ground points of the band
        if not len(P):
            out.append(None)
            continue
        near = np.full(len(P), np.inf)
        for g in train:
            Vg, Kg = np.asarray(g.viewmat), np.asarray(g.K)
            pc = P @ Vg[:3, :3].T + Vg[:3, 3]
            uv = pc @ Kg.T
            z = np.maximum(uv[:, 2], 1e-9)
            seen = (pc[:, 2] > 0.1) & (uv[:, 0] / z >= 0) & (uv[:, 0] / z < g.width) & (uv[:, 1] / z >= 0) & (uv[:, 1] / z < g.height)
            near = np.where(seen, np.minimum(near, np.linalg.norm(P - camera_center(Vg), axis=1)), near)
        r = np.linalg.norm(P - C, axis=1) / near
        out.append(round(float(np.median(r[np.isfinite(near)])), 3) if np.isfinite(near).any() else None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", type=Path, required=True)
    ap.add_argument("--bands", type=int, default=6)
    ap.add_argument("--figure", type=Path)
    ap.add_argument("--view", type=int, default=1, help="held-out view (index among them) drawn by --figure")
    ap.add_argument("--out", type=Path, default=RESULTS / "heldout_bands.json")
    a = ap.parse_args()
    from PIL import Image

    from realsim.assets.cameras import load_cameras
    from realsim.recon.bundle import load_scene

    sc = load_scene(a.scene)
    gt_path = a.scene.parent / "capture" / "cameras_gt.json"  # a synthetic demo's exact cameras (for the ground scale)
    exact = {f.name: f for f in load_cameras(gt_path).frames} if gt_path.is_file() else None
    rows = []
    for i, f in enumerate(x for x in sc.cameras.frames if x.split == "test"):
        img = sc.render(f.viewmat, f.K, f.width, f.height)["rgb"].numpy()  # [H,W,3] as the demo renders it
        gt = np.asarray(Image.open(sc.root / "images" / f.name).convert("RGB"), np.float32) / 255.0
        se = ((img - gt) ** 2).mean(-1)  # [H,W]
        H = se.shape[0]
        bands = [_psnr(float(se[b * H // a.bands:(b + 1) * H // a.bands].mean())) for b in range(a.bands)]
        rows.append({"view": f.name, "psnr": round(_psnr(float(se.mean())), 2), "psnr_by_band_top_to_bottom": [round(b, 2) for b in bands],
                     "bottom_third_error_share": round(float(se[2 * H // 3:].sum() / se.sum()), 3)})
        if exact is not None:
            rows[-1]["ground_distance_ratio_by_band"] = ground_scale_ratio(exact[f.name], [x for x in exact.values() if x.split == "train"],
                                                                           a.bands)
        if a.figure is not None and i == a.view:
            err = np.repeat((np.clip(np.sqrt(se) * 4, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)
            a.figure.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([(img * 255 + 0.5).astype(np.uint8), (gt * 255 + 0.5).astype(np.uint8), err], 1)).save(a.figure)
    print("| held-out view | PSNR | PSNR by band, top -> bottom | bottom third's share of the error | ground: held-out / nearest "
          "training distance by band |\n|---|---|---|---|---|")
    for r in rows:
        ratio = " / ".join("-" if x is None else f"{x:.2f}" for x in r.get("ground_distance_ratio_by_band", []))
        print(f"| {r['view']} | {r['psnr']:.2f} | {' / '.join(f'{b:.1f}' for b in r['psnr_by_band_top_to_bottom'])} | "
              f"{r['bottom_third_error_share']:.2f} | {ratio} |")
    write_result(a.out, {"scene": str(a.scene), "rows": rows})


if __name__ == "__main__":
    main()
