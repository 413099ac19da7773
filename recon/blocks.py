"""Block-wise training of large scenes on Ray: partition the scene (partition.py), train every block as a Ray task with
its own checkpoint (a failed or pre-empted worker's retry resumes its block), then merge the blocks (merge.py).

Work happens in OUT's sibling `.OUT.blocks/` (partition.json, per block a WORKDIR `bNN/work` and a bundle `bNN/scene`
with the trainer's `.scene.train/` checkpoint); it is removed once the merged bundle is written. On a cluster every
node must see WORKDIR and OUT at the same paths (a shared filesystem) and have realsim installed.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from realsim.assets.atomic import check_output_dir, make_dirs
from realsim.assets.cameras import CameraSet, save_cameras
from realsim.assets.errors import InputError, RealsimError
from realsim.assets.progress import ProgressFn, report

from .partition import Partition, PartitionConfig, camera_visibility, load_partition, partition_scene, tracks_by_camera, \
    write_points_bin
from .train_config import TrainConfig, scale_schedule

__all__ = ["BlocksResult", "blocks_dir_for", "plan_blocks", "prepare_blocks", "train_block", "run_blocks", "train_blocks",
           "ray_runtime"]

log = logging.getLogger("realsim.recon.blocks")


@dataclass
class BlocksResult:
    out: Path
    partition: Partition
    blocks: list[dict[str, Any]]  # per block: iterations, seconds, resumed_from, anchors kept, metrics
    metrics: dict[str, Any]  # merged scene: held-out PSNR / SSIM, on the views straddling a boundary too
    seconds: float
    timings: dict[str, float]  # wall seconds: plan (partition + block WORKDIRs), blocks (Ray tasks), merge (+ evaluation)


def blocks_dir_for(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.blocks"


def check_mergeable(cfg: TrainConfig) -> None:
    """Block models are merged by stacking their decoders: refuse the Scaffold options that cannot be stacked, early."""
    s = cfg.scaffold
    if cfg.model == "scaffold" and (s.appearance_dim > 0 or s.feature_bank or s.use_dist):
        raise InputError("--blocks needs scaffold.appearance_dim 0, feature_bank and use_dist off (block decoders are "
                         "merged by stacking)")


def plan_blocks(workdir: str | os.PathLike, pcfg: PartitionConfig, plan: str | os.PathLike | None = None) -> Partition:
    """The partition of WORKDIR: a saved plan (its cameras must exist here) or a new one."""
    from .dataset import load_camera_source, load_points

    cams, base = load_camera_source(workdir)
    if plan is not None:
        part = load_partition(plan)
        known = {f.name for f in cams.frames}
        missing = sorted({n for b in part.blocks for n in b.cameras} - known)
        if missing:
            raise InputError(f"{plan}: {len(missing)} of its cameras are not in {workdir} (e.g. {missing[0]})")
        return part
    xyz, _ = load_points(base)
    return partition_scene(cams, xyz, pcfg, tracks_by_camera(base, cams, len(xyz)), source=str(workdir))


def _block_iterations(total: int, part: Partition) -> list[int]:
    """The run's iterations shared by the blocks in proportion to their training cameras (equal epochs per photo)."""
    n = np.array([b.n_train for b in part.blocks], np.float64)
    return [max(1, int(round(total * x / n.sum()))) for x in n]


def prepare_blocks(workdir: str | os.PathLike, root: Path, cfg: TrainConfig, part: Partition,
                   cpus_per_block: int = 1) -> list[dict[str, Any]]:
    """Write each block's WORKDIR (its cameras, the SfM points of its expanded region and those its cameras see) and
    return the task specs: {id, name, work, out, config (the block's TrainConfig as a dict)}."""
    from .dataset import load_camera_source, load_points
    from .scaffold import median_nn_distance

    cams, base = load_camera_source(workdir)
    xyz, rgb = load_points(base)
    tracks = tracks_by_camera(base, cams, len(xyz))
    seen = camera_visibility(cams, xyz, tracks, part.depth or math.inf)
    index = {f.name: i for i, f in enumerate(cams.frames)}
    voxel = cfg.scaffold.voxel_size if cfg.scaffold.voxel_size > 0 else median_nn_distance(xyz)
    uv = part.to_uv(xyz)
    specs = []
    for b, iters in zip(part.blocks, _block_iterations(cfg.iterations, part)):
        bdir = root / b.name
        work = make_dirs(bdir / "work")
        frames = [cams.frames[index[n]] for n in b.cameras]
        img_dir = os.path.relpath((base / cams.images_dir).resolve(), work.resolve())
        save_cameras(work / "cameras.json", CameraSet(frames, img_dir))
        keep = (uv[:, 0] >= b.expanded[0, 0]) & (uv[:, 0] < b.expanded[0, 1]) & (uv[:, 1] >= b.expanded[1, 0]) & \
            (uv[:, 1] < b.expanded[1, 1])
        for n in b.cameras:
            keep[seen[index[n]]] = True
        write_points_bin(work / "sparse" / "0" / "points3D.bin", xyz[keep], rgb[keep])
        if (base / "scene.json").is_file():
            shutil.copy2(base / "scene.json", work / "scene.json")
        bc = TrainConfig.from_dict(cfg.to_dict())
        bc.iterations = iters
        scale_schedule(bc)
        bc.scaffold.voxel_size = float(voxel)  # one anchor lattice for every block
        bc.threads = int(cpus_per_block)
        bc.checkpoint_every = min(cfg.checkpoint_every or iters, max(10, iters // 4))
        specs.append({"id": b.id, "name": b.name, "work": str(work), "out": str(bdir / "scene"), "config": bc.to_dict(),
                      "n_cameras": len(b.cameras), "n_points": int(keep.sum())})
    return specs


def _done(out: Path) -> bool:
    return (out / "scene.json").is_file() and (out / "model.safetensors").is_file()


def train_block(spec: dict[str, Any], board: Any = None, progress: ProgressFn | None = None,
                stop_after: int | None = None, override_config: bool = False) -> dict[str, Any]:
    """Train one block (the body of its Ray task): a finished block is kept, a checkpointed one resumed, else started.
    `board` (a Ray actor) receives progress for the driver; `stop_after` stops with a checkpoint, as a pre-emption would."""
    import json

    import torch

    from .checkpoint import checkpoint_step, ckpt_dir_for
    from .trainer import train

    out = Path(spec["out"])
    cfg = TrainConfig.from_dict(spec["config"])
    base = {"id": spec["id"], "name": spec["name"], "pid": os.getpid(), "host": socket.gethostname()}
    if _done(out):
        m = json.loads((out / "scene.json").read_text())["metadata"].get("train", {}).get("metrics", {})
        return {**base, "iterations": m.get("iterations"), "seconds": 0.0, "metrics": m, "resumed_from": None,
                "skipped": True}
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ck = ckpt_dir_for(out) / "checkpoint.safetensors"
    step0 = checkpoint_step(ck) if ck.is_file() else None
    last = [0.0]

    def prog(stage: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        report(progress, stage, done, total, **info)
        now = time.monotonic()
        if board is not None and stage == "train" and (now - last[0] > 0.25 or done == total):
            last[0] = now
            board.put.remote(spec["id"], {"stage": stage, "step": done, "total": total, "pid": os.getpid(),
                                          **{k: v for k, v in info.items() if k in ("loss", "psnr", "anchors")}})

    import resource

    cpu0 = time.process_time()
    res = train(spec["work"], out, cfg, progress=prog, resume=step0 is not None, overwrite=step0 is None,
                stop_after=stop_after, override_config=override_config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # this worker's peak so far, MiB (Linux: KiB)
    # CPU seconds of this task (all its threads): its cost on a machine of its own, unlike wall time on a shared one
    return {**base, "iterations": res.iterations, "seconds": round(res.seconds, 2), "metrics": res.metrics,
            "resumed_from": step0, "skipped": False, "worker_peak_rss_mb": round(peak, 1),
            "cpu_seconds": round(time.process_time() - cpu0, 2)}


# ---------------------------------------------------------------------------------------------------------------- Ray
def _check_reachable(address: str) -> None:
    """A TCP connection to the cluster's head within 3 s, or one clear error (ray.init would retry for minutes)."""
    if address == "auto":
        return
    client = address.startswith("ray://")
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    try:
        port_n = int(port) if port else (10001 if client else 6379)
        socket.create_connection((host.strip("[]"), port_n), timeout=3.0).close()
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise RealsimError(f"cannot reach the Ray cluster at {address!r} ({reason}): start one with `ray start --head` "
                           "or leave out --ray-address to train on this machine") from None


@contextlib.contextmanager
def ray_runtime(address: str | None = None, num_cpus: int = 0) -> Iterator[dict[str, Any]]:
    """Ray for the block tasks: the runtime already started in this process, the cluster at `address`, or a local
    runtime on num_cpus cores (0 = all); shut down on exit when this call started it."""
    import ray

    if ray.is_initialized():
        yield {"address": "existing", "started": False}
        return
    if address:
        _check_reachable(address)
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if not address:
        kw.update(num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=100 * 1024 * 1024)
    try:
        ray.init(address=address or None, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray runtime"
        raise RealsimError(f"cannot start {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    try:
        yield {"address": address or "local", "started": True}
    finally:
        ray.shutdown()


class _Board:
    """Ray actor: the latest progress record of each block, read by the driver."""

    def __init__(self) -> None:
        self.state: dict[int, dict[str, Any]] = {}

    def put(self, block: int, rec: dict[str, Any]) -> None:
        self.state[block] = rec

    def get(self) -> dict[int, dict[str, Any]]:
        return self.state


def _unwrap(e: Exception, name: str) -> Exception:
    cause = getattr(e, "cause", None)
    if isinstance(cause, RealsimError):
        return type(cause)(f"block {name}: {cause}") if type(cause) in (RealsimError, InputError) else cause
    return RealsimError(f"block {name} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")


def run_blocks(specs: list[dict[str, Any]], address: str | None = None, num_cpus: int = 0, cpus_per_block: int = 1,
               progress: ProgressFn | None = None, max_retries: int = 3, override_config: bool = False,
               on_poll: Any = None) -> list[dict[str, Any]]:
    """Train the blocks as Ray tasks (a worker that dies is retried, resuming its block's checkpoint); progress per block
    as stage "block NAME". on_poll(state) sees the board ({block id: latest record with the worker pid}) at every poll."""
    import ray

    with ray_runtime(address, num_cpus):
        gpus = float(ray.cluster_resources().get("GPU", 0))
        board = ray.remote(num_cpus=0)(_Board).remote()
        task = ray.remote(train_block).options(num_cpus=cpus_per_block, num_gpus=1 if gpus >= 1 else 0,
                                               max_retries=max_retries, retry_exceptions=False)
        refs = {task.remote(s, board, override_config=override_config): s for s in specs}
        names = {s["id"]: s["name"] for s in specs}
        results: dict[int, dict[str, Any]] = {}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.25)
                for r in ready:
                    try:
                        res = ray.get(r)
                    except ray.exceptions.RayError as e:
                        raise _unwrap(e, refs[r]["name"]) from None
                    results[res["id"]] = res
                    it = res["iterations"] or 0
                    report(progress, f"block {res['name']}", it, it, finished=True)
                state = ray.get(board.get.remote())
                if on_poll is not None:
                    on_poll(state)
                for bid, rec in sorted(state.items()):
                    if bid not in results:
                        info = {k: v for k, v in rec.items() if k in ("loss", "psnr", "anchors")}
                        report(progress, f"block {names[bid]}", rec["step"], rec["total"], **info)
        except BaseException:
            for r in pending:
                ray.cancel(r)
            raise
    return [results[s["id"]] for s in specs]


def train_blocks(workdir: str | os.PathLike, out: str | os.PathLike, cfg: TrainConfig, pcfg: PartitionConfig,
                 plan: str | os.PathLike | None = None, ray_address: str | None = None, num_cpus: int = 0,
                 cpus_per_block: int = 1, resume: bool = False, overwrite: bool = False, override_config: bool = False,
                 progress: ProgressFn | None = None, on_poll: Any = None) -> BlocksResult:
    """Partition WORKDIR, train its blocks on Ray and write the merged scene bundle OUT (on_poll: see run_blocks)."""
    from .merge import write_merged

    t0 = time.perf_counter()
    out = Path(out)
    root = blocks_dir_for(out)
    check_output_dir(out, overwrite)
    check_mergeable(cfg)
    if ray_address:
        _check_reachable(ray_address)  # before anything is written
    if root.exists() and not resume:
        if not overwrite:
            done = sum(_done(p / "scene") for p in root.glob("b*"))
            raise RealsimError(f"an interrupted block run is at {root} ({done} blocks finished): pass --resume to continue "
                               "it or --overwrite to start over")
        shutil.rmtree(root)
    if resume and not (root / "partition.json").is_file():
        raise InputError(f"nothing to resume: no block run at {root}")
    part = load_partition(root / "partition.json") if resume else plan_blocks(workdir, pcfg, plan)
    make_dirs(root)
    part.save(root / "partition.json")
    specs = prepare_blocks(workdir, root, cfg, part, cpus_per_block)
    t1 = time.perf_counter()
    results = run_blocks(specs, ray_address, num_cpus, cpus_per_block, progress, override_config=override_config,
                         on_poll=on_poll)
    t2 = time.perf_counter()
    report(progress, "merge", 0, 1)
    metrics, kept = write_merged(workdir, out, cfg, part, [Path(s["out"]) for s in specs], results, root / "partition.json",
                                 overwrite=overwrite or resume, progress=progress)
    for r, k in zip(results, kept):
        r.update(anchors_kept=k[0], anchors_block=k[1])
    shutil.rmtree(root, ignore_errors=True)
    t3 = time.perf_counter()
    timings = {"plan": round(t1 - t0, 2), "blocks": round(t2 - t1, 2), "merge": round(t3 - t2, 2)}
    return BlocksResult(out, part, results, metrics, t3 - t0, timings)
