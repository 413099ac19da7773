"""Autoregressive conditional motion diffusion in the manner of CAMDM (Chen et al., SIGGRAPH 2024), sized for CPUs.

A transformer encoder denoises the next F frames of features given: the past P frames, the desired root trajectory
(K sparse points over ~1.5 s plus one dense target per generated frame: position and facing in the current root frame)
and a style label. It predicts x0 directly; a few (<= 8) diffusion steps are used both in training and sampling.
Classifier-free guidance: the style and the past motion are each dropped at random in training (null embeddings).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realsim.assets.errors import InputError
from realsim.assets.skeleton import Skeleton


@dataclass
class MotionModelConfig:
    """Sizes of the denoiser and of its conditioning windows (frames at 30 fps)."""

    d_feat: int = 195          # per-frame feature size (data.D_FEAT)
    n_styles: int = 15
    d_model: int = 192
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    past: int = 10             # P frames of past motion
    future: int = 20           # F frames generated per call
    traj_points: int = 9       # K sparse trajectory points ...
    traj_stride: int = 5       # ... every 5 frames: 45 frames = 1.5 s ahead
    diffusion_steps: int = 8   # T (train and sample)
    dropout: float = 0.0

    @property
    def traj_horizon(self) -> int:
        return self.traj_points * self.traj_stride


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [B,dim] of integer steps t [B]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


class MotionDenoiser(nn.Module):
    """x0-predicting transformer. Tokens: [cond (step + style)] + K trajectory + P past + F noisy future frames."""

    def __init__(self, cfg: MotionModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.in_past = nn.Linear(cfg.d_feat, d)
        self.in_x = nn.Linear(cfg.d_feat + 4, d)           # noisy frame + its dense trajectory target
        self.in_traj = nn.Linear(4, d)
        self.style_emb = nn.Embedding(cfg.n_styles + 1, d)  # last index = no style (guidance)
        self.null_past = nn.Parameter(torch.zeros(cfg.past, d))
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        n_tok = 1 + cfg.traj_points + cfg.past + cfg.future
        self.pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.d_feat)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, past: torch.Tensor, traj: torch.Tensor, dense: torch.Tensor,
                style: torch.Tensor, drop_past: torch.Tensor | None = None) -> torch.Tensor:
        """x_t [B,F,D] noisy (normalised) future, t [B] steps, past [B,P,D], traj [B,K,4], dense [B,F,4],
        style [B] (n_styles = none), drop_past [B] bool -> x0 estimate [B,F,D]."""
        B = x_t.shape[0]
        cond = self.t_mlp(_timestep_embedding(t, self.cfg.d_model)) + self.style_emb(style)
        p = self.in_past(past)
        if drop_past is not None:
            p = torch.where(drop_past[:, None, None], self.null_past[None].expand(B, -1, -1), p)
        tokens = torch.cat([cond[:, None], self.in_traj(traj), p, self.in_x(torch.cat([x_t, dense], -1))], 1) + self.pos
        h = self.norm(self.encoder(tokens))
        return self.out(h[:, -self.cfg.future:])


class Diffusion:
    """Cosine-schedule Gaussian diffusion with T steps and x0 parameterisation."""

    def __init__(self, steps: int):
        self.T = steps
        s = 0.008
        x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
        ac = torch.cos(((x / steps) + s) / (1 + s) * math.pi / 2) ** 2
        ac = ac / ac[0]
        betas = (1 - ac[1:] / ac[:-1]).clamp(max=0.999)
        alphas = 1 - betas
        self.ac = torch.cumprod(alphas, 0)                                  # [T]
        self.ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.ac[:-1]])
        self.betas = betas
        self.coef_x0 = (betas * self.ac_prev.sqrt() / (1 - self.ac)).float()
        self.coef_xt = ((1 - self.ac_prev) * alphas.sqrt() / (1 - self.ac)).float()
        self.post_std = (betas * (1 - self.ac_prev) / (1 - self.ac)).clamp(min=1e-20).sqrt().float()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        a = self.ac.float()[t][:, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


@dataclass
class MotionModel:
    """A trained model: denoiser + feature normalisation + style vocabulary + skeleton (what a .safetensors holds)."""

    cfg: MotionModelConfig
    net: MotionDenoiser
    mean: torch.Tensor         # [D]
    std: torch.Tensor          # [D]
    styles: list[str]
    skeleton: Skeleton
    meta: dict = field(default_factory=dict)
    idle: torch.Tensor | None = None   # [D] a standing frame (zero velocity): the controller's initial past

    def __post_init__(self) -> None:
        self.diffusion = Diffusion(self.cfg.diffusion_steps)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    @torch.no_grad()
    def sample(self, past: torch.Tensor, traj: torch.Tensor, dense: torch.Tensor, style: torch.Tensor,
               w_style: float = 0.0, w_past: float = 0.0, steps: int | None = None,
               generator: torch.Generator | None = None, guide_steps: int | None = None,
               guide_reuse: bool = False) -> torch.Tensor:
        """Generate future features [B,F,D] (raw units) from past [B,P,D] raw, traj [B,K,4], dense [B,F,4], style [B].

        Guidance: x0 = c + w_style (c - c_without_style) + w_past (c - c_without_past); a weight of 0 skips that pass.
        `steps` < T uses a strided DDIM-like subset of the T steps (deterministic between them).
        `guide_steps` k: guidance only on the first k sampling steps (the noisiest, where the motion is decided), -k: only
        on the last k; None: on all (each guided step costs one extra pass per guidance term). `guide_reuse`: steps without
        their own guidance pass add the last computed guidance offset (w (c - c_without)) again, so one extra pass
        (guide_steps=1) steers every step.
        """
        self.net.eval()
        B, F, D = past.shape[0], self.cfg.future, self.cfg.d_feat
        pn = self.normalize(past)
        x = torch.randn(B, F, D, generator=generator)
        T = self.diffusion.T
        seq = list(range(T - 1, -1, -1)) if not steps or steps >= T else [int(round(v)) for v in np.linspace(T - 1, 0, steps)]
        null_style = torch.full_like(style, self.cfg.n_styles)
        no_drop = torch.zeros(B, dtype=torch.bool)
        n_seq = len(seq)
        offset = None  # the last guidance offset added to x0 (for guide_reuse)
        for i, t in enumerate(seq):
            guide = guide_steps is None or (i < guide_steps if guide_steps >= 0 else i >= n_seq + guide_steps)
            g_style, g_past = (w_style, w_past) if guide else (0.0, 0.0)
            tt = torch.full((B,), t, dtype=torch.long)
            xs, ps, ts, ds, ss, dp = [x], [pn], [traj], [dense], [style], [no_drop]
            if g_style:
                xs.append(x); ps.append(pn); ts.append(traj); ds.append(dense); ss.append(null_style); dp.append(no_drop)
            if g_past:
                xs.append(x); ps.append(pn); ts.append(traj); ds.append(dense); ss.append(style); dp.append(~no_drop)
            n = len(xs)
            out = self.net(torch.cat(xs), tt.repeat(n), torch.cat(ps), torch.cat(ts), torch.cat(ds), torch.cat(ss),
                           torch.cat(dp))
            chunks = out.split(B)
            x0 = chunks[0]
            k = 1
            if g_style or g_past:
                offset = torch.zeros_like(x0)
            if g_style:
                offset = offset + g_style * (chunks[0] - chunks[k]); k += 1
            if g_past:
                offset = offset + g_past * (chunks[0] - chunks[k])
            if g_style or g_past or (guide_reuse and offset is not None):
                x0 = x0 + offset
            if i == len(seq) - 1:
                x = x0
                break
            t_next = seq[i + 1]
            if t_next == t - 1:  # ancestral DDPM step
                d = self.diffusion
                mean = d.coef_x0[t] * x0 + d.coef_xt[t] * x
                x = mean + d.post_std[t] * torch.randn(x.shape, generator=generator)
            else:  # DDIM (eta=0) jump
                a_t, a_n = self.diffusion.ac[t].float(), self.diffusion.ac[t_next].float()
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                x = a_n.sqrt() * x0 + (1 - a_n).sqrt() * eps
        return self.denormalize(x)

    # ------------------------------------------------------------------------------------------------------ files
    def state_tensors(self) -> dict[str, torch.Tensor]:
        t = {f"net.{k}": v.detach().float().contiguous() for k, v in self.net.state_dict().items()}
        t["norm.mean"] = self.mean.float().contiguous()
        t["norm.std"] = self.std.float().contiguous()
        if self.idle is not None:
            t["idle"] = self.idle.float().contiguous()
        return t

    def metadata(self) -> dict[str, str]:
        return {"format": "realsim.motion/1", "config": json.dumps(asdict(self.cfg)), "styles": json.dumps(self.styles),
                "skeleton": json.dumps(self.skeleton.to_dict()), "meta": json.dumps(self.meta)}

    def save(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        from realsim.assets.atomic import atomic_path

        with atomic_path(path) as tmp:
            save_file(self.state_tensors(), str(tmp), metadata=self.metadata())

    @staticmethod
    def load(path: str | os.PathLike) -> "MotionModel":
        """Load a model file written by `save`; InputError for missing or foreign files."""
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise InputError(f"motion model {p} not found")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises several types for corrupt headers
            raise InputError(f"motion model {p} is not a readable safetensors file ({type(e).__name__})") from None
        if meta.get("format") != "realsim.motion/1":
            raise InputError(f"{p} is not a realsim motion model (format {meta.get('format')!r})")
        cfg = MotionModelConfig(**json.loads(meta["config"]))
        net = MotionDenoiser(cfg)
        try:
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        except RuntimeError as e:
            raise InputError(f"motion model {p} does not match its config: {str(e).splitlines()[0]}") from None
        net.eval()
        return MotionModel(cfg, net, tensors["norm.mean"], tensors["norm.std"], json.loads(meta["styles"]),
                           Skeleton.from_dict(json.loads(meta["skeleton"])), json.loads(meta.get("meta", "{}")),
                           tensors.get("idle"))


def default_weights_path() -> Path:
    """The shipped weights inside the package (realsim/assets/weights/motion_default.safetensors)."""
    import realsim.assets as _a

    return Path(_a.__file__).resolve().parent / "weights" / "motion_default.safetensors"
