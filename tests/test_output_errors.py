"""Issue 12: unwritable outputs, absurd frame sizes and thread settings give one clear line and exit 2 in every command."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from test_render_cli import scene_dir  # noqa: F401  (module fixture: a small 3DGS bundle, no training)

from realsim.assets.atomic import atomic_dir, atomic_path, check_writable
from realsim.assets.errors import OutputError
from realsim.cli.main import main


def _run(argv, capsys):
    try:
        rc = main(["-q", *argv])
    except SystemExit as e:  # argparse errors
        rc = int(e.code)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def _one_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _only(folder, *names):
    """Nothing was left in `folder` (no temporaries, no half-written output) but `names`."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# ----------------------------------------------------------------------------------------------- unwritable outputs
# every command that writes, with the output argument last; {s}: the scene bundle, {x}: an output path
COMMANDS = {
    "poses": ["poses", "{s}", "-o", "{x}"],
    "train": ["train", "{s}", "-o", "{x}"],
    "reconstruct": ["reconstruct", "{s}", "-o", "{x}"],
    "render": ["render", "{s}", "-o", "{x}"],
    "export": ["export", "{s}", "-o", "{x}.ply"],
    "eval": ["eval", "{s}", "-o", "{x}.json"],
    "simulate": ["simulate", "{s}", "-o", "{x}"],
    "demo": ["demo", "-o", "{x}"],
    "motion-train": ["motion", "train", "{s}", "-o", "{x}.safetensors"],
    "motion-sample": ["motion", "sample", "-o", "{x}"],
}


@pytest.mark.parametrize("where", ["proc", "under_file"])
@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_unwritable_output_is_one_line(scene_dir, tmp_path, capsys, cmd, where):  # noqa: F811
    (tmp_path / "afile").write_text("x")
    x = "/proc/realsim_out" if where == "proc" else str(tmp_path / "afile" / "out")
    argv = [a.replace("{s}", str(scene_dir)).replace("{x}", x) for a in COMMANDS[cmd]]
    t0 = time.perf_counter()
    rc, err = _run(argv, capsys)
    line = _one_line(err)
    assert rc == 2, err
    assert x in line and "not writable" in line, line
    assert ("file system does not allow" if where == "proc" else "is a file, not a folder") in line, line
    assert time.perf_counter() - t0 < 5.0  # refused up front, before any real work
    _only(tmp_path, "afile")
    assert not os.path.exists("/proc/realsim_out")


def _mount_tmpfs(path, opts):
    path.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or p.returncode}); the monkeypatched ENOSPC test covers it")


@pytest.fixture
def small_disk(tmp_path):
    """A 48 kB tmpfs (real ENOSPC) and a read-only tmpfs (real EROFS, which stops root too)."""
    full, ro = tmp_path / "full", tmp_path / "ro"
    _mount_tmpfs(full, "size=48k")
    try:
        _mount_tmpfs(ro, "ro,size=48k")
        yield full, ro
    finally:
        for m in (full, ro):
            subprocess.run(["umount", str(m)], capture_output=True)


def test_full_and_read_only_disks(scene_dir, small_disk, capsys):  # noqa: F811
    full, ro = small_disk
    for argv, out in [(["render", str(scene_dir), "--seconds", "1", "--fps", "8"], "vid"),
                      (["export", str(scene_dir), "--no-eval"], "x.ply")]:
        rc, err = _run([*argv, "-o", str(full / out)], capsys)
        assert rc == 2 and f"cannot write {full / out}: disk full" in _one_line(err), err
        _only(full)  # the partial video folder / temp PLY are gone
        rc, err = _run([*argv, "-o", str(ro / out)], capsys)
        assert rc == 2 and str(ro / out) in _one_line(err) and "read-only file system" in err, err


def test_enospc_while_writing_frames(scene_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    """A write that fails half way (disk full from a frame's PNG) names the output, removes the temp folder."""
    from realsim.render import streams

    real, calls = streams.save_depth_png16, []

    def full_after_two(path, *a, **k):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() reports it: no file name
        return real(path, *a, **k)

    monkeypatch.setattr(streams, "save_depth_png16", full_after_two)
    out = tmp_path / "vid"
    rc, err = _run(["render", str(scene_dir), "-o", str(out), "--seconds", "1", "--fps", "8"], capsys)
    assert rc == 2 and _one_line(err) == f"realsim render: error: cannot write {out}: disk full (no space left on device)"
    assert len(calls) == 3
    _only(tmp_path)


def test_atomic_helpers_name_the_output(tmp_path):
    """Library level: OutputError carries the output path (never a temporary name); genuine bugs pass through."""
    out = tmp_path / "o.bin"
    with pytest.raises(OutputError) as ei:
        with atomic_path(out) as tmp:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp))
    assert ei.value.path == str(out) and "quota" in str(ei.value)
    with pytest.raises(OutputError) as ei:
        with atomic_dir(tmp_path / "d") as tmp:
            with atomic_path(tmp / "inner.json") as t2:
                raise OSError(errno.EROFS, "Read-only file system", str(t2))
    assert ei.value.path == str(tmp_path / "d") and "read-only" in str(ei.value)
    # an OSError about some other file (a missing input) is not an output error
    with pytest.raises(FileNotFoundError):
        with atomic_dir(tmp_path / "d2"):
            open(tmp_path / "no_such_input.txt")
    _only(tmp_path)
    check_writable(tmp_path / "new" / "deeper" / "x")  # a folder still to be made is fine, and is not made
    _only(tmp_path)


# ----------------------------------------------------------------------------------------------- absurd frame sizes
def _camera_path_json(path, w, h):
    from realsim.render.paths import look_at

    c2w = np.linalg.inv(look_at(np.array([4.0, 0, 2]), np.zeros(3)))
    c2w[:3, 1:3] *= -1  # OpenCV -> OpenGL axes
    cam = {"camera_to_world": c2w.ravel().tolist(), "fov": 50.0, "aspect": w / h}
    path.write_text(json.dumps({"camera_type": "perspective", "render_width": w, "render_height": h, "fps": 8,
                                "seconds": 0.25, "camera_path": [cam, cam]}))
    return path


def test_huge_camera_path_refused_at_once(scene_dir, tmp_path, capsys):  # noqa: F811
    f = _camera_path_json(tmp_path / "huge.json", 100000, 100000)
    t0 = time.perf_counter()
    rc, err = _run(["render", str(scene_dir), "-o", str(tmp_path / "vid"), "--path", str(f)], capsys)
    dt = time.perf_counter() - t0
    line = _one_line(err)
    assert rc == 2 and dt < 1.0, (dt, err)
    # the size, the memory it would need (10^10 px x 256 B = 2.6 TB) and how to allow it
    assert "100000x100000" in line and "2.6 TB" in line and "--max-pixels" in line and "REALSIM_MAX_PIXELS" in line, line
    _only(tmp_path, "huge.json")


@pytest.mark.parametrize("argv,needle", [
    (["render", "{s}", "-o", "{o}", "--width", "100000", "--height", "100000"], "2.6 TB"),
    (["render", "{s}", "-o", "{o}", "--width", "50000"], "50000x37500"),  # height from the cameras' aspect
    (["simulate", "{s}", "-o", "{o}", "--width", "100000", "--height", "100000"], "ssaa 2"),
    (["demo", "-o", "{o}", "--capture-size", "100000x100000"], "capture size 100000x100000"),
])
def test_huge_sizes_refused(scene_dir, tmp_path, capsys, argv, needle):  # noqa: F811
    argv = [a.replace("{s}", str(scene_dir)).replace("{o}", str(tmp_path / "o")) for a in argv]
    rc, err = _run(argv, capsys)
    assert rc == 2 and needle in _one_line(err) and "--max-pixels" in err, err
    _only(tmp_path)


def test_max_pixels_override(scene_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    """The limit comes from REALSIM_MAX_PIXELS when set, and --max-pixels overrides both ways (64x48 = 3072 px)."""
    monkeypatch.setenv("REALSIM_MAX_PIXELS", "3000")
    argv = ["render", str(scene_dir), "--seconds", "0.25", "--fps", "8"]
    rc, err = _run([*argv, "-o", str(tmp_path / "a")], capsys)
    assert rc == 2 and "64x48" in err and "limit of 0.0 MP" not in err and "--max-pixels 3072" in err, err
    rc, err = _run([*argv, "-o", str(tmp_path / "b"), "--max-pixels", "3072"], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "b" / "cameras.json").read_text())["width"] == 64
    monkeypatch.setenv("REALSIM_MAX_PIXELS", "lots")
    rc, err = _run([*argv, "-o", str(tmp_path / "c")], capsys)
    assert rc == 2 and "REALSIM_MAX_PIXELS" in _one_line(err)
    _only(tmp_path, "b")


# ----------------------------------------------------------------------------------------------- threads
def test_threads_option_and_env(scene_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    from realsim.cli.common import available_cores, resolve_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("REALSIM_THREADS", raising=False)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # restored afterwards: main() sets it for child processes
        assert resolve_threads(None) == (len(os.sched_getaffinity(0)), False) == (available_cores(), False)
        monkeypatch.setenv("REALSIM_THREADS", "3")
        assert resolve_threads(None) == (3, True) and resolve_threads(1) == (1, True)  # the option wins
        rc, err = _run(["render", str(scene_dir), "-o", str(tmp_path / "v"), "--seconds", "0.25", "--fps", "8",
                        "--threads", "1"], capsys)
        assert rc == 0, err
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        monkeypatch.setenv("REALSIM_THREADS", "0")
        rc, err = _run(["render", str(scene_dir), "-o", str(tmp_path / "w")], capsys)
        assert rc == 2 and "REALSIM_THREADS must be a whole number >= 1" in _one_line(err)
        rc, err = _run(["train", str(scene_dir), "-o", str(tmp_path / "t"), "--threads", "0"], capsys)
        assert rc == 2 and "--threads" in _one_line(err)
    finally:
        torch.set_num_threads(before)
    _only(tmp_path, "v")


def test_passive_wait_policy_reaches_libgomp():
    """Importing realsim before torch makes libgomp sleep at once (spin count 0); a user's own setting wins."""
    def spincount(env_policy):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env["OMP_DISPLAY_ENV"] = "verbose"
        if env_policy:
            env["OMP_WAIT_POLICY"] = env_policy
        p = subprocess.run([sys.executable, "-c", "import realsim.cli.main, torch; torch.ones(8).sum()"], env=env,
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        line = [ln for ln in p.stderr.decode(errors="replace").splitlines() if "GOMP_SPINCOUNT" in ln]
        return line[0].split("=")[1].strip().strip("'")

    assert spincount(None) == "0"
    assert spincount("ACTIVE") != "0"


@pytest.mark.parametrize("cmd", ["poses", "train", "render", "simulate", "demo"])
def test_output_folder_that_is_a_file_is_one_line(scene_dir, tmp_path, capsys, cmd):  # noqa: F811
    """A folder output given as an existing file: one line, exit 2, the file untouched."""
    (tmp_path / "afile").write_text("mine")
    argv = [a.replace("{s}", str(scene_dir)).replace("{x}", str(tmp_path / "afile")) for a in COMMANDS[cmd]]
    t0 = time.perf_counter()
    rc, err = _run(argv, capsys)
    line = _one_line(err)
    assert rc == 2 and "afile" in line and "not a folder" in line, line
    assert time.perf_counter() - t0 < 5.0
    assert (tmp_path / "afile").read_text() == "mine"
    _only(tmp_path, "afile")


def test_library_refuses_a_file_as_output_folder(scene_dir, tmp_path):  # noqa: F811
    """The library entry points behind those commands say the same (they used to raise NotADirectoryError from their
    own emptiness check when called directly)."""
    from realsim.assets.errors import RealsimError
    from realsim.recon import TrainConfig, train
    from realsim.sim.pipeline import simulate_scene

    (tmp_path / "afile").write_text("mine")
    with pytest.raises(RealsimError, match="not a folder"):
        train(scene_dir, tmp_path / "afile", TrainConfig(iterations=1))
    with pytest.raises(RealsimError, match="not a folder"):
        simulate_scene(scene_dir, tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "mine"


def test_two_frames_render_at_once_only_when_memory_allows(monkeypatch):
    """Frames in flight: two for video sizes, one where two frames would take more than a quarter of the memory."""
    from realsim.render import limits

    monkeypatch.setattr(limits, "_machine_memory", lambda: 24 * 10**9)
    assert limits.frames_in_flight(480, 360, 2) == 2
    assert limits.frames_in_flight(4096, 4096, 2) == 1  # 12.9 GB a frame
    monkeypatch.setattr(limits, "_machine_memory", lambda: None)
    assert limits.frames_in_flight(480, 360, 2) == 1
