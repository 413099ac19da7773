"""A small walking-style classifier used as a metric: does generated motion look like the style it was asked for?

Descriptors of 2 s windows (posture and motion statistics of the joints in the root frame, independent of where the body
walks to), standardised, then multinomial logistic regression (torch, full-batch L-BFGS). Trained on real clips in a few
seconds, so the bench trains it itself (no weights shipped). Accuracy is per window; held-out = whole clips never seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .canon import FPS, SKELETON, SL_H, SL_POS, J

WINDOW = 60   # frames (2 s at 30 fps)
STRIDE = 15


def _mirror_perm() -> list[int]:
    names = SKELETON.names
    return [names.index(n[:-1] + ("R" if n.endswith("_L") else "L")) if n[-2:] in ("_L", "_R") else i
            for i, n in enumerate(names)]


def window_descriptors(feat: np.ndarray, window: int = WINDOW, stride: int = STRIDE, skip: int = 0,
                       mirror: bool = False) -> np.ndarray:
    """Descriptors [W,d] of the windows of one clip's features [T,D] (model frame): per window the mean and standard
    deviation of the root-frame joint positions and hips height, and the mean speed of each joint relative to the root.
    The walking speed itself is left out (commands set it). `mirror`: of the left-right mirrored motion (augmentation)."""
    f = np.asarray(feat, np.float64)[skip:]
    pos = f[:, SL_POS].reshape(len(f), J, 3)
    if mirror:  # root frame: +Z forward, X lateral
        pos = pos[:, _mirror_perm()] * np.array([-1.0, 1.0, 1.0])
    rel = pos - pos[:, :1] * np.array([1.0, 0.0, 1.0])                      # joints relative to the hips' ground point
    vel = np.zeros((len(f), J))
    vel[1:] = np.linalg.norm(np.diff(rel, axis=0), axis=-1) * FPS
    chan = np.concatenate([rel.reshape(len(f), -1), f[:, SL_H: SL_H + 1]], 1)   # [T,3J+1]
    out = []
    for s in range(0, len(f) - window + 1, stride):
        c, v = chan[s: s + window], vel[s: s + window]
        out.append(np.concatenate([c.mean(0), c.std(0), v.mean(0)]))
    return np.asarray(out).reshape(-1, 2 * (3 * J + 1) + J)


@dataclass
class StyleClassifier:
    """Logistic regression over window descriptors; `classes` are style names (index = label)."""

    classes: list[str]
    mu: np.ndarray       # [d]
    sd: np.ndarray       # [d]
    W: np.ndarray        # [d,C]
    b: np.ndarray        # [C]

    def predict(self, desc: np.ndarray) -> np.ndarray:
        """Class index [N] for descriptors [N,d]."""
        z = (np.asarray(desc, np.float64) - self.mu) / self.sd
        return np.argmax(z @ self.W + self.b, axis=1)

    def accuracy(self, desc: np.ndarray, label: int | np.ndarray) -> float:
        lab = np.broadcast_to(np.asarray(label), (len(desc),))
        return float((self.predict(desc) == lab).mean()) if len(desc) else float("nan")


def fit(desc: np.ndarray, labels: np.ndarray, classes: list[str], l2: float = 1e-3, iters: int = 200,
        seed: int = 0) -> StyleClassifier:
    """Multinomial logistic regression with an L2 penalty on standardised descriptors [N,d], labels [N]; classes are
    weighted by their inverse frequency (the normal style has many more clips than the others)."""
    torch.manual_seed(seed)
    mu = desc.mean(0)
    sd = desc.std(0) + 1e-6
    X = torch.from_numpy((desc - mu) / sd).float()
    y = torch.from_numpy(np.asarray(labels)).long()
    W = torch.zeros(X.shape[1], len(classes), requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    cnt = torch.bincount(y, minlength=len(classes)).float()
    cw = torch.where(cnt > 0, cnt.sum() / (len(classes) * cnt.clamp(min=1)), torch.zeros_like(cnt))
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W + b, y, weight=cw) + l2 * (W ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return StyleClassifier(list(classes), mu, sd, W.detach().double().numpy(), b.detach().double().numpy())


def style_walks(clips, action: str = "walk") -> dict[str, list]:
    """Real clips of `action` grouped by style (ClipFeatures with .style/.action/.source), sorted by source name."""
    out: dict[str, list] = {}
    for c in sorted((c for c in clips if c.action == action), key=lambda c: c.source):
        out.setdefault(c.style, []).append(c)
    return {s: v for s, v in sorted(out.items()) if len(v) >= 2}


def held_out_accuracy(walks: dict[str, list]) -> tuple[float, dict[str, float]]:
    """Leave-one-take-out over each style's clips (fold k holds out every style's k-th clip; training clips also
    mirrored): mean window accuracy on the held-out real clips (those long enough for a window), overall and per style."""
    classes = list(walks)
    n_folds = min(len(v) for v in walks.values())
    hit: dict[str, list[float]] = {s: [] for s in classes}
    for k in range(n_folds):
        Xtr, ytr = [], []
        for i, s in enumerate(classes):
            for j, c in enumerate(walks[s]):
                if j % n_folds != k:
                    for m in (False, True):
                        d = window_descriptors(c.feat, mirror=m)
                        Xtr.append(d)
                        ytr.append(np.full(len(d), i))
        clf = fit(np.concatenate(Xtr), np.concatenate(ytr), classes)
        for i, s in enumerate(classes):
            for j, c in enumerate(walks[s]):
                d = window_descriptors(c.feat)
                if j % n_folds == k and len(d):
                    hit[s].append(clf.accuracy(d, i))
    per = {s: float(np.mean(v)) for s, v in hit.items()}
    return float(np.mean(list(per.values()))), per


def train_on_walks(walks: dict[str, list]) -> StyleClassifier:
    """The classifier on every real clip (for scoring generated motion)."""
    classes = list(walks)
    X, y = [], []
    for i, s in enumerate(classes):
        for c in walks[s]:
            for m in (False, True):
                d = window_descriptors(c.feat, mirror=m)
                X.append(d)
                y.append(np.full(len(d), i))
    return fit(np.concatenate(X), np.concatenate(y), classes)


def rollout_descriptors(ro, agent: int, skip: int = 30) -> np.ndarray:
    """Descriptors of one agent of a Rollout (sample.py): its model-frame poses re-featurised like the real clips; the
    first `skip` frames (start from standing) are dropped."""
    from .data import Clip, clip_features

    cf = clip_features(Clip(ro.local_rot[agent], ro.hips_model[agent]))
    return window_descriptors(cf.feat, skip=skip)
