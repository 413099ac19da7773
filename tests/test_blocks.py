"""Block-wise training on Ray (issue 20): partition by visibility, every block trains as a Ray task, a killed worker's
block resumes from its checkpoint, the merge keeps each anchor once and decodes exactly as its block did, the merged
bundle renders; bad inputs give one line. A SYNTHETIC street (sim.capture) at 64x48 keeps it to seconds per block."""
from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from realsim.assets.cameras import CameraFrame, CameraSet, load_cameras, save_cameras
from realsim.assets.errors import RealsimError
from realsim.cli.main import main
from realsim.recon.partition import PartitionConfig, load_partition, partition_scene, write_points_bin

pytestmark = pytest.mark.usefixtures("fresh_log_handlers")

W, H = 64, 48


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    """A posed WORKDIR of the synthetic street: 16 exact cameras along 30 m, 5000 surface points as the SfM points."""
    from realsim.sim.capture import CaptureConfig, build_street, make_capture, sample_surface_points

    root = tmp_path_factory.mktemp("street")
    cap = make_capture(root / "capture", CaptureConfig(n_images=16, width=W, height=H, focal=400 * W / 480,
                                                       walk_length=30.0, ssaa=1))
    work = root / "work"
    work.mkdir()
    save_cameras(work / "cameras.json", CameraSet(load_cameras(cap / "cameras_gt.json").frames, "../capture/images"))
    pts = sample_surface_points(build_street(0), 5000, seed=1)
    write_points_bin(work / "sparse" / "0" / "points3D.bin", pts, np.full((len(pts), 3), 128, np.uint8))
    return work


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 * 1024, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def _cams_points(work):
    from realsim.recon.dataset import load_points

    return load_cameras(work / "cameras.json"), load_points(work)[0]


def test_partition_by_visibility(street, tmp_path):
    cams, xyz = _cams_points(street)
    for n in (2, 3):
        part = partition_scene(cams, xyz, PartitionConfig(blocks=n))
        assert len(part.blocks) == n
        # cores tile the ground: every point and camera centre in exactly one core; each core inside its expanded region
        centres = np.stack([np.linalg.inv(f.viewmat)[:3, 3] for f in cams.frames])
        for p in (xyz, centres):
            uv = part.to_uv(p)
            inside = [(uv[:, 0] >= b.core[0, 0]) & (uv[:, 0] < b.core[0, 1]) & (uv[:, 1] >= b.core[1, 0]) &
                      (uv[:, 1] < b.core[1, 1]) for b in part.blocks]
            assert (np.sum(inside, 0) == 1).all()
        for b in part.blocks:
            assert (b.expanded[:, 0] <= b.core[:, 0]).all() and (b.expanded[:, 1] >= b.core[:, 1]).all()
            assert b.n_train >= 2
        # visibility, not position: the walk looks up the street (+Y), so the last block holds cameras standing before
        # its region (they see its facades), and the first block none standing beyond its region (they look away)
        last, first = part.blocks[-1], part.blocks[0]
        cuv = part.to_uv(centres)
        names = [f.name for f in cams.frames]
        standing_out = [nm for nm, c in zip(names, cuv) if c[0] < last.expanded[0, 0] and nm in last.cameras]
        assert len(standing_out) >= 2, (n, last.cameras)
        assert not [nm for nm, c in zip(names, cuv) if c[0] >= first.expanded[0, 1] and nm in first.cameras]
    # the plan is written, reads back to the same plan and is reproducible
    part.save(tmp_path / "partition.json")
    again = load_partition(tmp_path / "partition.json")
    assert again.to_dict() == part.to_dict() == partition_scene(cams, xyz, PartitionConfig(blocks=3)).to_dict()
    d = json.loads((tmp_path / "partition.json").read_text())
    assert d["blocks"][0]["core"]["u"][0] is None and d["blocks"][1]["cameras"] == part.blocks[1].cameras


def test_partition_bad_inputs(street):
    cams, xyz = _cams_points(street)
    n_train = len(cams.split("train"))
    with pytest.raises(RealsimError, match=f"--blocks {n_train + 1} is more than the {n_train} training cameras"):
        partition_scene(cams, xyz, PartitionConfig(blocks=n_train + 1))
    # six photos from one spot and two from another: a block between them has no cameras
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    frames = []
    for i, x in enumerate([0.0] * 6 + [20.0] * 2):
        V = np.eye(4)
        V[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # looking +Y
        V[:3, 3] = -V[:3, :3] @ np.array([x, 0.0, 1.6])
        frames.append(CameraFrame(f"{i:02d}.png", K, V, W, H))
    pts = np.random.default_rng(0).uniform([-5, 5, 0], [25, 15, 3], (500, 3))
    with pytest.raises(RealsimError, match=r"block b01 .* has no training cameras: use fewer blocks"):
        partition_scene(CameraSet(frames), pts, PartitionConfig(blocks=3))


def test_merge_is_exact_and_keeps_each_anchor_once():
    """Cropped block models merged by stacked decoders give exactly the Gaussians each block gives for its anchors."""
    from realsim.recon.bundle import build_model
    from realsim.recon.merge import anchor_positions_unique, block_codes, crop_to_core, merge_models
    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

    rng = np.random.default_rng(0)
    cams = CameraSet([CameraFrame(f"{i}.png", np.eye(3), _look_y(0.0, 4.0 * i), W, H) for i in range(9)])
    xyz = rng.uniform([-4, -2, 0], [4, 34, 6], (3000, 3)).astype(np.float32)
    part = partition_scene(cams, xyz, PartitionConfig(blocks=3, min_visible_points=10**9))
    models, parts, kept = [], [], []
    for b in part.blocks:
        m = ScaffoldModel.from_points(xyz, ScaffoldConfig(voxel_size=0.8), seed=b.id)  # overlapping: the same lattice
        with torch.no_grad():
            for p in m.parameters():
                if p.requires_grad:
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(b.id)) * 0.5)
        t, k, n = crop_to_core(m, part, b)
        models.append(build_model("scaffold", m.config.to_dict(), t))
        parts.append(t)
        kept.append(k)
    merged = merge_models("scaffold", [m.config.to_dict() for m in models], parts)
    assert merged.n_anchors == sum(kept) == len(np.unique(np.round(xyz / 0.8), axis=0))  # each lattice anchor once
    assert anchor_positions_unique(merged)
    assert (block_codes(merged, 3) == part.core_of(merged.anchors.numpy())).all()
    K = torch.tensor([[40.0, 0, 32], [0, 40, 24], [0, 0, 1]])
    for y in (2.0, 15.0):
        V = torch.tensor(_look_y(0.0, y), dtype=torch.float32)
        got = merged.splats(V, K, W, H)
        ref = [m.splats(V, K, W, H) for m in models]
        assert len(got) == sum(len(r) for r in ref) > 1000
        for a in ("means", "scales", "quats", "opacities", "colors"):
            want = torch.cat([getattr(r, a) for r in ref])
            assert torch.allclose(getattr(got, a), want, atol=1e-5), a
    # per-block evaluation of the stacked decoders (recon.merge.compact_decoders): the same Gaussians
    from realsim.recon.merge import compact_decoders, stacked_blocks

    assert stacked_blocks(merged) == 3 and all(stacked_blocks(m) == 0 for m in models)
    compact = compact_decoders(merge_models("scaffold", [m.config.to_dict() for m in models], parts))
    assert compact.mlp_cov.per_block()[0].shape == (3, 32, 35)  # per block: hidden 32, input feature 32 + direction 3
    assert {k: v.shape for k, v in compact.state_dict().items()} == {k: v.shape for k, v in merged.state_dict().items()}
    for y in (2.0, 15.0):
        V = torch.tensor(_look_y(0.0, y), dtype=torch.float32)
        got, ref = compact.splats(V, K, W, H), merged.splats(V, K, W, H)
        assert len(got) == len(ref)
        for a in ("means", "scales", "quats", "opacities", "colors"):
            assert torch.allclose(getattr(got, a), getattr(ref, a), atol=1e-5), a


def _look_y(x: float, y: float) -> np.ndarray:
    V = np.eye(4)
    V[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    V[:3, 3] = -V[:3, :3] @ np.array([x, y, 1.6])
    return V


def test_ray_address_unreachable_and_too_many_blocks(street, tmp_path, capsys):
    out = tmp_path / "scene"
    rc = main(["-q", "train", str(street), "-o", str(out), "--blocks", "2", "--ray-address", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cannot reach the Ray cluster at '127.0.0.1:9'" in err, err
    assert not out.exists() and not (tmp_path / ".scene.blocks").exists()
    rc = main(["-q", "train", str(street), "-o", str(out), "--blocks", "99"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--blocks 99 is more than the 14 training cameras" in err, err
    rc = main(["-q", "train", str(street), "-o", str(out), "--blocks", "2", "--ray-address", "no-such-host.invalid:abc"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cannot reach the Ray cluster" in err, err


def test_block_without_cameras_is_one_line(tmp_path, capsys):
    """Six photos from one spot and two from another, 3 blocks: the middle one has no cameras (CLI: one line, exit 2)."""
    work = tmp_path / "work"
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    frames = [CameraFrame(f"{i:02d}.png", K, _look_y(x, 0.0), W, H) for i, x in enumerate([0.0] * 6 + [20.0] * 2)]
    save_cameras(work / "cameras.json", CameraSet(frames, "images"))
    pts = np.random.default_rng(0).uniform([-5, 5, 0], [25, 15, 3], (500, 3))
    write_points_bin(work / "sparse" / "0" / "points3D.bin", pts, np.full((len(pts), 3), 128, np.uint8))
    out = tmp_path / "scene"
    rc = main(["-q", "train", str(work), "-o", str(out), "--blocks", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "has no training cameras: use fewer blocks" in err, err
    assert not out.exists()


def test_blocks_train_resume_after_kill_and_merge(street, tmp_path, ray_local, capsys, monkeypatch):
    """Block b00 was pre-empted at iteration 6 (its checkpoint kept); the CLI run resumes it, and the worker training b01
    is SIGKILLed after its first checkpoint: Ray retries the task, which resumes there. Then the merged bundle."""
    from realsim.recon import blocks
    from realsim.recon.bundle import load_scene
    from realsim.recon.merge import anchor_positions_unique, block_codes, held_out_views
    from realsim.recon.metrics import psnr
    from realsim.recon.trainer import preset_config

    out = tmp_path / "scene"
    iters = 120
    cfg = preset_config("cpu-fast", "scaffold", iters)  # what the CLI run below uses
    part = blocks.plan_blocks(street, PartitionConfig(blocks=2))
    root = blocks.blocks_dir_for(out)
    root.mkdir()
    part.save(root / "partition.json")
    specs = blocks.prepare_blocks(street, root, cfg, part)
    assert blocks.train_block(specs[0], stop_after=6)["iterations"] == 6
    ck1 = specs[1]["config"]["checkpoint_every"]
    killed: list[int] = []

    def kill_b01(state):
        rec = state.get(1)
        if not killed and rec and rec["step"] > ck1 and rec["pid"] != os.getpid():
            os.kill(rec["pid"], signal.SIGKILL)
            killed.append(rec["step"])

    run = blocks.run_blocks
    monkeypatch.setattr(blocks, "run_blocks", lambda *a, **k: run(*a, **{**k, "on_poll": kill_b01}))
    rc = main(["-q", "train", str(street), "-o", str(out), "--preset", "cpu-fast", "--iterations", str(iters),
               "--blocks", "2", "--resume", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    summary = json.loads(cap.out.strip().splitlines()[-1])
    b0, b1 = summary["blocks"]
    assert killed and killed[0] < b1["iterations"], "the b01 worker was not killed mid-run"
    assert b0["resumed_from"] == 6 and b1["resumed_from"] is not None and ck1 <= b1["resumed_from"] <= killed[0]
    assert [b0["iterations"], b1["iterations"]] == [s["config"]["iterations"] for s in specs]
    assert sum(s["config"]["iterations"] for s in specs) == pytest.approx(iters, abs=1)
    assert not root.exists()
    # the merged bundle: each anchor once, in its own block's core, as many as the blocks kept
    scene = load_scene(out)
    m = scene.model
    assert m.n_anchors == b0["anchors_kept"] + b1["anchors_kept"] == summary["anchors"]
    assert b0["anchors_kept"] < b0["anchors_block"] and b1["anchors_kept"] < b1["anchors_block"]
    assert anchor_positions_unique(m)
    plan = load_partition(out / "blocks" / "partition.json")
    assert (block_codes(m, 2) == plan.core_of(m.anchors.numpy())).all()
    # it renders the held-out views (covered, at the PSNR recorded in the bundle), no worse than the blocks alone do
    views = held_out_views(street, preset_config("cpu-fast", "scaffold", iters))
    assert len(views) == summary["test_views"] == 2
    outs = [scene.render(v.viewmat, v.K, v.width, v.height) for v in views]
    ps = [psnr(o["rgb"], v.image) for o, v in zip(outs, views)]
    assert np.mean(ps) == pytest.approx(summary["psnr"], abs=1e-3)
    assert all(float(o["alpha"].mean()) > 0.5 for o in outs)
    assert summary["psnr"] > min(b["metrics"]["psnr"] for b in summary["blocks"]) - 0.5, (ps, summary["blocks"])
    # `realsim render` reads it unchanged
    rc = main(["-q", "render", str(out), "-o", str(tmp_path / "vid"), "--seconds", "1", "--fps", "3", "--json"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["n_frames"] == 3 and math.isfinite(summary["psnr"])
