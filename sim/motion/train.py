"""Training the motion diffusion model: window sampling, CFG dropout, EMA, resumable checkpoints (safetensors)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .canon import D_FEAT, FPS, SKELETON, wrap_angle
from .data import MotionDataset, build_dataset
from .losses import geometric_losses
from .model import MotionDenoiser, MotionModel, MotionModelConfig


@dataclass
class TrainConfig:
    """Optimisation settings; `minutes` caps wall-clock time (training stops early, the result is still saved)."""

    steps: int = 6000
    batch: int = 64
    lr: float = 4e-4
    warmup: int = 200
    weight_decay: float = 0.01
    ema: float = 0.995
    p_drop_style: float = 0.15
    p_drop_past: float = 0.10
    ckpt_every: int = 200
    minutes: float | None = None
    seed: int = 0
    threads: int = 1          # 1 thread: on a shared, oversubscribed CPU 2 OpenMP threads ran 10x slower
    w_foot: float = 0.0       # foot velocity (m/s)^2 where the data's contact label is 1, on FK of the predicted rotations
    w_fk: float = 0.0         # FK of the predicted rotations vs the data's joint positions (cm^2 / 100)
    w_contact: float = 0.0    # extra weight on the contact channels (0/1 units): the run-time foot lock reads them
    w_root: float = 1.0       # extra weight on the normalised root channels (velocity, yaw rate, height) in the x0 MSE
    w_track: float = 0.0      # root track integrated from the predicted velocity vs the data's (cm^2 / 100): holds speed
    balance_styles: bool = False  # draw windows with equal total weight per style (the normal style is ~half the data)
    turn_boost: float = 1.0   # draw windows that walk (> 0.5 m/s) and turn (> 0.3 rad/s) this many times as often
    init: str | None = None   # fine-tune: start from these weights (their model config, normalisation and idle frame)
    model: MotionModelConfig = field(default_factory=MotionModelConfig)


PRESETS: dict[str, TrainConfig] = {
    # the shipped weights: 4000 steps of batch 64 (d=128, 4 layers); about 40-60 min on 2 idle cores
    "default": TrainConfig(steps=4000, lr=5e-4, model=MotionModelConfig(d_model=128, n_layers=4, n_heads=4, d_ff=384)),
    # fine-tuning the shipped weights with the foot terms (MDM / CAMDM-style): use with --init
    "finetune": TrainConfig(steps=6000, lr=2e-4, warmup=100, w_foot=2.0, w_fk=1.0, w_contact=1.0,
                            model=MotionModelConfig(d_model=128, n_layers=4, n_heads=4, d_ff=384)),
    # fine-tuning further with the root velocity held (issue 16): the foot term alone let the walk slow down ~10 %
    "finetune_speed": TrainConfig(steps=6000, lr=2e-4, warmup=50, w_foot=2.0, w_fk=1.0, w_contact=1.0, w_root=3.0,
                                  w_track=1.0, model=MotionModelConfig(d_model=128, n_layers=4, n_heads=4, d_ff=384)),
    # the same with windows drawn evenly over the styles (experiment: does the style show more?)
    "finetune_style": TrainConfig(steps=6000, lr=2e-4, warmup=50, w_foot=2.0, w_fk=1.0, w_contact=1.0, w_root=3.0,
                                  w_track=1.0, balance_styles=True,
                                  model=MotionModelConfig(d_model=128, n_layers=4, n_heads=4, d_ff=384)),
    # the same with a heavier foot term and walking turns drawn twice as often: feet planted on curves (issue 16)
    "finetune_turn": TrainConfig(steps=6000, lr=2e-4, warmup=50, w_foot=4.0, w_fk=1.0, w_contact=1.0, w_root=3.0,
                                 w_track=2.0, balance_styles=True, turn_boost=2.0,
                                 model=MotionModelConfig(d_model=128, n_layers=4, n_heads=4, d_ff=384)),
    # a quick look (about 5 minutes)
    "small": TrainConfig(steps=1000, model=MotionModelConfig(d_model=128, n_layers=3, d_ff=256)),
    # unit tests: overfits one clip in a few hundred steps
    "tiny": TrainConfig(steps=800, batch=16, lr=2e-3, warmup=10, ema=0.0, p_drop_style=0.0, p_drop_past=0.0,
                        model=MotionModelConfig(d_model=64, n_layers=2, n_heads=2, d_ff=128)),
}


def relative_track(root_xz: np.ndarray, yaw: np.ndarray, t: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Root positions/facing at t+offsets in the root frame of t: [M,K,4] = (x, z, sin dyaw, cos dyaw)."""
    tt = np.minimum(t[:, None] + offsets[None], len(yaw) - 1)
    d = root_xz[tt] - root_xz[t][:, None]
    c, s = np.cos(yaw[t])[:, None], np.sin(yaw[t])[:, None]
    x = c * d[..., 0] - s * d[..., 1]
    z = s * d[..., 0] + c * d[..., 1]
    dy = wrap_angle(yaw[tt] - yaw[t][:, None])
    return np.stack([x, z, np.sin(dy), np.cos(dy)], -1).astype(np.float32)


@dataclass
class Windows:
    """Every training window as index arrays into one concatenated feature array."""

    feat: np.ndarray      # [N,D] all frames
    cur: np.ndarray       # [M] global index of each window's current (last past) frame
    traj: np.ndarray      # [M,K,4]
    dense: np.ndarray     # [M,F,4]
    style: np.ndarray     # [M]


def make_windows(ds: MotionDataset, cfg: MotionModelConfig) -> Windows:
    P, F, H = cfg.past, cfg.future, cfg.traj_horizon
    feats, cur, traj, dense, style = [], [], [], [], []
    base = 0
    sparse_off = np.arange(1, cfg.traj_points + 1) * cfg.traj_stride
    dense_off = np.arange(1, F + 1)
    for c in ds.clips:
        T = len(c.feat)
        t = np.arange(P - 1, T - max(F, H))
        feats.append(c.feat)
        if len(t):
            cur.append(base + t)
            traj.append(relative_track(c.root_xz, c.yaw, t, sparse_off))
            dense.append(relative_track(c.root_xz, c.yaw, t, dense_off))
            style.append(np.full(len(t), ds.styles.index(c.style)))
        base += T
    if not cur:
        raise InputError(f"clips are too short for training windows (need > {P + max(F, H)} frames)")
    return Windows(np.concatenate(feats).astype(np.float32), np.concatenate(cur), np.concatenate(traj),
                   np.concatenate(dense), np.concatenate(style))


def _stats(feat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = feat.mean(0)
    std = feat.std(0)
    std = np.maximum(std, 0.05 * max(float(np.median(std)), 1e-3))
    std[-2:] = np.maximum(std[-2:], 0.25)  # contacts: keep them in a sane numeric range
    return mean.astype(np.float32), std.astype(np.float32)


def idle_frame(feat: np.ndarray) -> np.ndarray:
    """A representative standing frame [D]: among slow, two-footed frames the one nearest their mean; velocities zeroed."""
    speed = np.linalg.norm(feat[:, :2], axis=1)
    ok = (speed < 0.1) & (np.abs(feat[:, 2]) < 0.2) & (feat[:, -2:] > 0.5).all(1)
    cand = feat[ok] if ok.sum() >= 1 else feat
    m = cand.mean(0)
    f = cand[np.argmin(((cand - m) ** 2).sum(1))].copy()
    f[:3] = 0.0
    return f


def style_balanced_p(style: np.ndarray) -> np.ndarray:
    """Sampling probabilities [M] for windows with style labels [M]: every style present gets the same total weight."""
    cnt = np.bincount(style).astype(np.float64)
    p = 1.0 / cnt[style]
    return p / p.sum()


def turn_boosted_p(p: np.ndarray | None, dense: np.ndarray, boost: float) -> np.ndarray | None:
    """Sampling probabilities p [M] (None: uniform) with windows that walk and turn (root track dense [M,F,4]: over its F
    frames > 0.5 m/s and > 0.3 rad/s) weighted `boost` times; p unchanged when boost is 1."""
    if boost == 1.0:
        return p
    F = dense.shape[1]
    rate = np.abs(np.arctan2(dense[:, -1, 2], dense[:, -1, 3])) * FPS / F
    speed = np.linalg.norm(dense[:, -1, :2], axis=1) * FPS / F
    q = (np.full(len(dense), 1.0 / len(dense)) if p is None else p) * np.where((rate > 0.3) & (speed > 0.5), boost, 1.0)
    return q / q.sum()


def _opt_tensors(opt: torch.optim.Optimizer, names: dict[int, str]) -> dict[str, torch.Tensor]:
    out = {}
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for k, v in st.items():
                if torch.is_tensor(v):
                    out[f"opt.{names[id(p)]}.{k}"] = v.detach().clone().reshape(v.shape).contiguous()
    return out


def _load_opt(opt: torch.optim.Optimizer, names: dict[int, str], tensors: dict[str, torch.Tensor]) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            n = names[id(p)]
            st = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"opt.{n}.") and
                  k[len(f"opt.{n}."):].count(".") == 0}
            if st:
                opt.state[p] = {k: (v if k != "step" else v.float()) for k, v in st.items()}


def train(data: str | os.PathLike | MotionDataset, out: str | os.PathLike, cfg: TrainConfig | None = None,
          checkpoint: str | os.PathLike | None = None, progress: ProgressFn | None = None,
          log_path: str | os.PathLike | None = None) -> MotionModel:
    """Train on a motion folder (or a built dataset) and write the EMA weights to `out` (.safetensors).

    A checkpoint (default `<out>.ckpt.safetensors`) is written every `ckpt_every` steps and resumed automatically.
    """
    cfg = cfg or TrainConfig()
    torch.set_num_threads(max(1, cfg.threads))
    ds = data if isinstance(data, MotionDataset) else build_dataset(data, progress=progress)
    base = MotionModel.load(cfg.init) if cfg.init else None
    mcfg = replace(base.cfg if base else cfg.model, d_feat=D_FEAT, n_styles=len(ds.styles))
    if base and base.styles != list(ds.styles):
        raise InputError(f"--init weights have styles {base.styles}, the data {list(ds.styles)}")
    win = make_windows(ds, mcfg)
    mean, std = (base.mean.numpy(), base.std.numpy()) if base else _stats(win.feat)
    idle = base.idle.numpy() if base and base.idle is not None else idle_frame(win.feat)
    featn = torch.from_numpy((win.feat - mean) / std)
    traj_t, dense_t = torch.from_numpy(win.traj), torch.from_numpy(win.dense)
    style_t = torch.from_numpy(win.style).long()
    cur_t = torch.from_numpy(win.cur).long()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = MotionDenoiser(mcfg)
    if base:
        net.load_state_dict(base.net.state_dict())
    ema = MotionDenoiser(mcfg)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    names = {id(p): n for n, p in net.named_parameters()}
    model = MotionModel(mcfg, ema, torch.from_numpy(mean), torch.from_numpy(std), list(ds.styles), SKELETON,
                        {"train": {k: v for k, v in asdict(cfg).items() if k != "model"}, "clips": len(ds.clips),
                         "frames": ds.n_frames, "windows": int(len(win.cur))}, torch.from_numpy(idle))
    if base:
        model.meta["init"] = {"file": Path(cfg.init).name, "steps": base.meta.get("steps")}
    diff = model.diffusion
    ckpt = Path(checkpoint) if checkpoint else Path(str(out) + ".ckpt.safetensors")
    step = 0
    if ckpt.is_file():
        from safetensors import safe_open

        with safe_open(str(ckpt), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("config") == json.dumps(asdict(mcfg)):
                t = {k: f.get_tensor(k) for k in f.keys()}
                net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
                ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
                _load_opt(opt, names, t)
                step = int(meta["step"])
                rng = np.random.default_rng(cfg.seed + step)
                torch.manual_seed(cfg.seed + step)
    P, F = mcfg.past, mcfg.future
    mean_t, std_t = torch.from_numpy(mean), torch.from_numpy(std)
    ar_p, ar_f = torch.arange(-P + 1, 1), torch.arange(1, F + 1)
    t0 = time.time()
    logf = open(log_path, "a") if log_path else None
    pick = style_balanced_p(win.style) if cfg.balance_styles else None  # window sampling probabilities (None: uniform)
    pick = turn_boosted_p(pick, win.dense, cfg.turn_boost)

    def save_ckpt() -> None:
        from safetensors.torch import save_file

        from realsim.assets.atomic import atomic_path

        t = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
        t.update({f"ema.{k}": v.contiguous() for k, v in ema.state_dict().items()})
        t.update(_opt_tensors(opt, names))
        with atomic_path(ckpt) as tmp:
            save_file(t, str(tmp), metadata={"config": json.dumps(asdict(mcfg)), "step": str(step)})

    try:
        net.train()
        while step < cfg.steps:
            if cfg.minutes is not None and time.time() - t0 > cfg.minutes * 60:
                break
            idx = torch.from_numpy(rng.integers(0, len(cur_t), cfg.batch) if pick is None else
                                   rng.choice(len(cur_t), cfg.batch, p=pick))
            c = cur_t[idx]
            past = featn[c[:, None] + ar_p]
            x0 = featn[c[:, None] + ar_f]
            traj, dense, style = traj_t[idx], dense_t[idx], style_t[idx].clone()
            drop_s = torch.rand(cfg.batch) < cfg.p_drop_style
            style[drop_s] = mcfg.n_styles
            drop_p = torch.rand(cfg.batch) < cfg.p_drop_past
            t = torch.randint(0, diff.T, (cfg.batch,))
            noise = torch.randn_like(x0)
            pred = net(diff.q_sample(x0, t, noise), t, past, traj, dense, style, drop_p)
            err = (pred - x0) ** 2
            loss = err.mean() + cfg.w_root * err[..., :4].mean()  # extra weight on the root channels (they drive the track)
            parts = {}
            if cfg.w_foot or cfg.w_fk or cfg.w_contact or cfg.w_track:
                parts = geometric_losses(pred * std_t + mean_t, x0 * std_t + mean_t, past[:, -1] * std_t + mean_t)
                loss = (loss + cfg.w_foot * parts["foot_vel"] + cfg.w_fk * parts["fk"] + cfg.w_contact * parts["contact"]
                        + cfg.w_track * parts["track"])
            lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                dec = cfg.ema if step > cfg.warmup else 0.0
                for pe, pn in zip(ema.parameters(), net.parameters()):
                    pe.mul_(dec).add_(pn.detach(), alpha=1 - dec)
            step += 1
            report(progress, "train", step, cfg.steps, loss=float(loss.detach()))
            if logf and (step % 25 == 0 or step == 1):
                row = {"step": step, "loss": round(float(loss.detach()), 5), "s": round(time.time() - t0, 1)}
                row.update({k: round(float(v.detach()), 5) for k, v in parts.items()})
                logf.write(json.dumps(row) + "\n")
                logf.flush()
            if step % cfg.ckpt_every == 0:
                save_ckpt()
    finally:
        if step > 0:
            save_ckpt()
        if logf:
            logf.close()
    if cfg.ema <= 0:
        ema.load_state_dict(net.state_dict())
    model.meta["steps"] = step
    model.meta["train_seconds_last_run"] = round(time.time() - t0, 1)
    model.save(out)
    return model
