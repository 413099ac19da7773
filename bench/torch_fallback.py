"""Memory and CPU time of one training step (forward + backward) on the pure-torch reference rasterizer, the fallback
when the C++ kernels cannot load, with and without recomputing each pixel chunk in backward (render/ref.py).

    python bench/torch_fallback.py [--gaussians 20000 50000] [--size 64x48]   -> bench/results/torch_fallback.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import RESULTS, write_result

CHILD = r"""
import json, resource, sys, time, torch
from realsim.render import ref
torch.manual_seed(0); torch.set_num_threads(1)
ck, n, w, h = sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
means = (torch.randn(n, 3) * torch.tensor([1.0, 0.7, 0.3]) + torch.tensor([0, 0, 3.0])).requires_grad_()
quats, scales = torch.randn(n, 4).requires_grad_(), (torch.rand(n, 3) * 0.05 + 0.01).requires_grad_()
op, col = torch.rand(n).requires_grad_(), torch.rand(n, 3).requires_grad_()
vm, K = torch.eye(4)[None], torch.tensor([[[float(w), 0, w / 2], [0, float(w), h / 2], [0, 0, 1]]])
t = time.process_time()
radii, m2d, dep, con, comp = ref.project(means, quats, scales, op, vm, K, w, h)
rc, ra = ref.rasterize(m2d, con, col[None], op[None] * comp, dep, radii, w, h, checkpoint=ck)
rc.sum().backward()
print(json.dumps({"checkpoint": ck, "gaussians": n, "visible": int((radii[0, :, 0] > 0).sum()),
                  "cpu_s": round(time.process_time() - t, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, nargs="+", default=[20000, 50000])
    ap.add_argument("--size", default="64x48")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    rows = []
    for n in a.gaussians:
        for ck in (0, 1):
            out = subprocess.run([sys.executable, "-c", CHILD, str(ck), str(n), str(w), str(h)], capture_output=True,
                                 text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'Gaussians':>10} {'visible':>8} {'recompute':>10} {'CPU s':>7} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['gaussians']:>10} {r['visible']:>8} {str(r['checkpoint']):>10} {r['cpu_s']:>7} {r['peak_rss_mb']:>12}")
    write_result(RESULTS / "torch_fallback.json", {"size": [w, h], "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
