"""Static colliders vs the reconstruction: how much of the Gaussian mass lies within 5 / 10 / 25 cm of a collider surface.

Methods, all beside the World's ground (plane or height field), all measured the same way: the Gaussian centres decoded for
the first, middle and last capture views, weighted by opacity (at most 150k of them, a fixed random subset), and their
unsigned distance to the nearest collider surface (the ground's vertically; a piece's surface whether the point is inside or
outside it), computed with open3d's RaycastingScene on the pieces' triangles:
  grid     -- the World's 0.25 m obstacle cells as columns up to obstacle_max (the earlier default)
  voxels   -- physics.colliders: 0.1 m solid columns fitted to the Gaussians (the default)
  coacd    -- the scene's TSDF mesh (`realsim mesh`, recon.mesh; or --mesh FILE) above the ground band, split into convex
              pieces by coacd (what MuJoCo can collide: meshes become convex hulls). Needs `pip install coacd`.

    python bench/physics_colliders.py --scene DEMO/scene [--mesh DEMO_mesh.glb]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import RESULTS, write_result


def _box_mesh(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of axis-aligned boxes [N,6]: vertices [8N,3], faces [12N,3]."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tri = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    V = (boxes[:, None, :3] + corners[None] * (boxes[:, None, 3:] - boxes[:, None, :3])).reshape(-1, 3)
    F = (tri[None] + 8 * np.arange(len(boxes))[:, None, None]).reshape(-1, 3)
    return V, F


def fit(world, pieces: list[tuple[np.ndarray, np.ndarray]], P: np.ndarray, w: np.ndarray) -> dict:
    """Weighted fraction of points within 5 / 10 / 25 cm of the ground or of any piece's triangles."""
    import open3d as o3d

    dist = np.abs(P[:, 2] - world.height(P[:, :2]))
    if pieces:
        V = np.concatenate([p[0] for p in pieces])
        off = np.cumsum([0] + [len(p[0]) for p in pieces])
        F = np.concatenate([p[1] + off[i] for i, p in enumerate(pieces)])
        rs = o3d.t.geometry.RaycastingScene()
        rs.add_triangles(o3d.core.Tensor(V.astype(np.float32)), o3d.core.Tensor(F.astype(np.uint32)))
        d = rs.compute_distance(o3d.core.Tensor(P.astype(np.float32))).numpy()
        dist = np.minimum(dist, d)
    tot = w.sum()
    return {f"within_{c}cm": round(float(w[dist <= c / 100].sum() / tot), 4) for c in (5, 10, 25)}


def coacd_pieces(world, mesh_path: str | None, scene, threshold: float) -> tuple[list, dict]:
    """Convex pieces of the scene's TSDF mesh above the ground band (coacd), as (vertices, faces) hulls."""
    import coacd
    import trimesh

    t0 = time.time()
    if mesh_path:
        m = trimesh.load(mesh_path, force="mesh")
        V, F = np.asarray(m.vertices, np.float64) * world.scale, np.asarray(m.faces)
    else:
        from realsim.recon.mesh import MeshConfig, mesh_scene

        tm = mesh_scene(scene, MeshConfig(texture_size=0, target_triangles=40_000))
        V, F = np.asarray(tm.vertices, np.float64) * world.scale, np.asarray(tm.faces)
    t_mesh = time.time() - t0
    h = V[:, 2] - world.height(V[:, :2])
    keep = (h[F] > world.config.obstacle_min).any(1)  # the static geometry: what stands above the ground band
    sub = trimesh.Trimesh(V, F[keep], process=True)
    sub.remove_unreferenced_vertices()
    if len(sub.faces) > 30_000:  # coacd time grows with the triangles: quadric decimation (open3d) first
        import open3d as o3d

        om = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(sub.vertices)),
                                       o3d.utility.Vector3iVector(np.asarray(sub.faces, np.int32)))
        om = om.simplify_quadric_decimation(30_000)
        sub = trimesh.Trimesh(np.asarray(om.vertices), np.asarray(om.triangles), process=True)
    t1 = time.time()
    parts = coacd.run_coacd(coacd.Mesh(np.asarray(sub.vertices), np.asarray(sub.faces)), threshold=threshold,
                            max_convex_hull=-1, seed=0)
    pieces = [(np.asarray(v, np.float64), np.asarray(f, np.int64)) for v, f in parts]
    return pieces, {"mesh_s": round(t_mesh, 1), "coacd_s": round(time.time() - t1, 1), "mesh_triangles": int(len(F)),
                    "static_triangles": int(len(sub.faces)), "pieces": len(pieces), "threshold": threshold}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", required=True)
    ap.add_argument("--mesh", default=None, help="the scene's TSDF mesh (realsim mesh SCENE -o FILE); default: built here")
    ap.add_argument("--threshold", type=float, default=0.05, help="coacd concavity threshold")
    ap.add_argument("--no-coacd", action="store_true")
    ap.add_argument("--out", default="physics_colliders.json", help="result file name under bench/results/")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from realsim.recon import load_scene
    from realsim.sim.physics.colliders import ColliderConfig, gaussian_points, voxel_boxes
    from realsim.sim.physics.model import collider_boxes
    from realsim.sim.world import world_from_scene

    scene = load_scene(args.scene)
    world = world_from_scene(scene)
    P, w = gaussian_points(scene, world.scale, 3)
    t0 = time.time()
    vox = voxel_boxes(world, P, w, ColliderConfig())
    t_vox = time.time() - t0
    sel = np.random.default_rng(0).permutation(len(P))[:150_000]
    Ps, ws = P[sel], w[sel]
    grid = collider_boxes(world)
    rows = {"ground only": {"fit": fit(world, [], Ps, ws)},
            "grid": {"fit": fit(world, [_box_mesh(grid)], Ps, ws), "pieces": int(len(grid))},
            "voxels": {"fit": fit(world, [_box_mesh(vox)], Ps, ws), "pieces": int(len(vox)), "build_s": round(t_vox, 2)}}
    if not args.no_coacd:
        pieces, info = coacd_pieces(world, args.mesh, scene, args.threshold)
        rows["coacd"] = {"fit": fit(world, pieces, Ps, ws), **info}
    print("| colliders | pieces | within 5 cm | 10 cm | 25 cm |\n|---|---|---|---|---|")
    for k, r in rows.items():
        f = r["fit"]
        print(f"| {k} | {r.get('pieces', '-')} | {100 * f['within_5cm']:.1f}% | {100 * f['within_10cm']:.1f}% | "
              f"{100 * f['within_25cm']:.1f}% |")
    p = write_result(RESULTS / args.out, {"scene": args.scene, "mesh": args.mesh, "gaussians": int(len(P)),
                                                          "measured_on": int(len(sel)), "rows": rows})
    print(json.dumps({"written": str(p)}))


if __name__ == "__main__":
    main()
