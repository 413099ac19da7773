"""The skinned body's parts as rings around the bind pose (sim/body.py): torso, neck, head and nose, arms, hands, legs, shoes.

Each ring's place is given relative to joints (a fraction along a bone, or metres past a joint) and its weights from that
relative place only, so the topology and the weights are the same for every agent; sizes scale with the agent's leg
length (g) and girth with its build. Radii and profiles are eyeballed from average adult proportions.
"""
from __future__ import annotations

import numpy as np

__all__ = ["build_parts"]


def _u(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(side, front) unit axes [A,3] across unit directions d [A,3]: front is +X (or +Z for a bone along X)."""
    ref = np.where((np.abs(d[:, 0]) > 0.9)[:, None], np.array([0.0, 0, 1]), np.array([1.0, 0, 0]))
    u = _u(ref - (ref * d).sum(-1, keepdims=True) * d)
    return np.cross(d, u), u


def _limb(body, m, B, g, chain, before, specs, radii, key, params=None) -> None:
    """A tube along the joints `chain` (bone i from chain[i] to chain[i+1] turns with chain[i]); specs per ring:
    ("t", i, t): fraction t along bone i; ("j", i, off, blend): off metres (times g) past joint chain[i], weights blended
    between the bone before it (or `before`) and after it over +-blend metres. radii [(side, front)] in metres (times g)."""
    from .body import blend_weights

    cs, sides, fronts, ws = [], [], [], []
    for sp in specs:
        if sp[0] == "t":
            _, i, t = sp
            a, b = B[:, chain[i]], B[:, chain[i + 1]]
            c, d, w = a + t * (b - a), _u(b - a), [(chain[i], 1.0)]
        else:
            _, i, off, bl = sp
            p = B[:, chain[i]]
            after = _u(B[:, chain[i + 1]] - p) if i + 1 < len(chain) else _u(p - B[:, chain[i - 1]])
            bef = _u(p - B[:, chain[i - 1]]) if i > 0 else after
            d = after if off >= 0 else bef
            c = p + off * g[:, None] * d
            w = blend_weights(chain[i - 1] if i > 0 else before, chain[i], off / bl)
        s, f = _frame(d)
        cs.append(c); sides.append(s); fronts.append(f); ws.append(w)
    rs = np.array([r[0] for r in radii])[None] * g[:, None]
    rf = np.array([r[1] for r in radii])[None] * g[:, None]
    m.part(np.stack(cs, 1), np.stack(sides, 1), np.stack(fronts, 1), rs, rf, [key] * len(specs), ws, params)


def _torso(body, m, B, g, looks) -> None:
    s, par = body.sem, body.parents
    chain = body._ancestors(s["neck"] if s["neck"] >= 0 else par[s["head"]])  # root .. neck
    build = np.array([lk.build for lk in looks])
    G = g * build
    z_hip = 0.5 * (B[:, s["l_hip"], 2] + B[:, s["r_hip"], 2])
    z_sh = 0.5 * (B[:, s["l_shoulder"], 2] + B[:, s["r_shoulder"], 2])
    lat_hip = 0.5 * np.abs(B[:, s["l_hip"], 1] - B[:, s["r_hip"], 1])
    lat_sh = 0.5 * np.abs(B[:, s["l_shoulder"], 1] - B[:, s["r_shoulder"], 1])
    wide = np.array([lk.shoulders for lk in looks])
    belly = np.array([lk.belly for lk in looks])
    specs = [("j", 0, -0.11, 0.1), ("j", 0, -0.03, 0.1)]
    for i in range(len(chain) - 1):
        specs += [("t", i, t) for t in ((0.2, 0.5, 0.8) if i < len(chain) - 2 else (0.0, 0.35, 0.65, 0.85))]
    specs.append(("j", len(chain) - 1, 0.0, 0.06))
    cs, ws = [], []
    for sp in specs:
        if sp[0] == "t":
            _, i, t = sp
            cs.append(B[:, chain[i]] + t * (B[:, chain[i + 1]] - B[:, chain[i]]))
            ws.append([(chain[i], 1.0)] if t > 0.0 or i == 0 else [(chain[i - 1], 0.5), (chain[i], 0.5)])
        else:
            _, i, off, _bl = sp
            cs.append(B[:, chain[i]] + np.array([0, 0, off]) * g[:, None])
            ws.append([(chain[i], 1.0)] if i == 0 else [(chain[i - 1], 0.5), (chain[i], 0.5)])
    C = np.stack(cs, 1)  # [A,R,3]
    u = (C[..., 2] - z_hip[:, None]) / np.maximum(z_sh - z_hip, 1e-3)[:, None]  # 0 at the hip joints, 1 at the shoulders
    uk = [-0.35, -0.05, 0.2, 0.35, 0.55, 0.75, 0.92, 1.05, 1.2]
    w = np.stack([np.interp(u[a], uk, [lat_hip[a] + 0.035 * G[a], lat_hip[a] + 0.075 * G[a], lat_hip[a] + 0.068 * G[a],
                                       0.118 * G[a], 0.12 * G[a] * wide[a], (lat_sh[a] + 0.02 * G[a]) * wide[a],
                                       (lat_sh[a] + 0.035 * G[a]) * wide[a], lat_sh[a] * 0.85 * wide[a], 0.062 * G[a]])
                  for a in range(len(g))])
    dp = np.stack([np.interp(u[a], uk, [0.07 * G[a], 0.1 * G[a], 0.095 * G[a] + belly[a], 0.095 * G[a] + belly[a],
                                        0.098 * G[a] + 0.5 * belly[a], 0.105 * G[a], 0.098 * G[a], 0.075 * G[a], 0.058 * G[a]])
                   for a in range(len(g))])
    fwd = np.stack([np.interp(u[a], [0.1, 0.35, 0.6, 0.8], [0, belly[a] * 0.8, 0.01, 0.012]) for a in range(len(g))])
    C = C + fwd[..., None] * np.array([1.0, 0, 0])
    key = ["trousers" if x < 0.22 else "shirt" for x in u[0]]
    b = key.index("shirt")  # the belt: the first shirt ring twice, so the colours meet on a line instead of blending
    C, w, dp = (np.concatenate([x[:, :b + 1], x[:, b:]], 1) for x in (C, w, dp))
    m.part(C, np.array([0.0, 1, 0]), np.array([1.0, 0, 0]), w, dp, key[:b] + ["trousers"] + key[b:], ws[:b + 1] + ws[b:])


def _head(body, m, B, g, looks) -> None:
    s, par = body.sem, body.parents
    h = s["head"]
    c, r = body._head(B)
    # neck: from inside the torso's top to inside the skull, turning with the neck's bones
    nk = s["neck"] if s["neck"] >= 0 else par[h]
    _limb(body, m, B, g, [nk, h], par[nk], [("j", 0, -0.03, 0.06), ("j", 0, 0.0, 0.06), ("t", 0, 0.6), ("j", 1, 0.02, 0.04)],
          [(0.05, 0.052), (0.05, 0.05), (0.047, 0.05), (0.047, 0.05)], "skin")
    lat = np.radians([-82, -60, -35, -12, 10, 32, 52, 70, 84])
    th = m.th
    params = [[(float(np.cos(p) * np.sin(t)), float(np.sin(p))) for t in th] for p in lat]
    C = c[:, None] + np.sin(lat)[None, :, None] * r[:, None, 2:3] * np.array([0, 0, 1.0])
    rs = np.cos(lat)[None] * r[:, 1:2]
    rf = np.cos(lat)[None] * r[:, 0:1]
    m.part(C, np.array([0.0, 1, 0]), np.array([1.0, 0, 0]), rs, rf, ["head"] * len(lat), [[(h, 1.0)]] * len(lat), params)
    tip = c + r * np.array([0.9, 0, -0.15])  # nose
    C = np.stack([tip, tip + np.array([0.025, 0, -0.004]) * g[:, None]], 1)
    m.part(C, np.array([0.0, 1, 0]), np.array([0.0, 0, 1]), np.array([[0.012, 0.004]]) * g[:, None],
           np.array([[0.018, 0.006]]) * g[:, None], ["skin", "skin"], [[(h, 1.0)]] * 2)


def build_parts(body, m, B: np.ndarray, looks) -> None:
    """Add every part of the body with bind joints B [A,J,3] to the ring mesh m."""
    s, par = body.sem, body.parents
    g = body._scale(B)
    _torso(body, m, B, g, looks)
    _head(body, m, B, g, looks)
    for sd in ("l", "r"):
        sh, el, wr = s[f"{sd}_shoulder"], s[f"{sd}_elbow"], s[f"{sd}_wrist"]
        arm = [("j", 0, -0.045, 0.09), ("j", 0, 0.0, 0.09), ("t", 0, 0.35), ("t", 0, 0.7), ("j", 1, -0.03, 0.05),
               ("j", 1, 0.0, 0.05), ("j", 1, 0.03, 0.05), ("t", 1, 0.45), ("t", 1, 0.8), ("j", 2, 0.0, 0.03)]
        frac = [0.0, 0.0, 0.175, 0.35, 0.47, 0.5, 0.53, 0.72, 0.9, 1.0]
        _limb(body, m, B, g, [sh, el, wr], par[sh], arm,
              [(0.04, 0.045), (0.052, 0.056), (0.047, 0.05), (0.042, 0.043), (0.038, 0.038), (0.037, 0.037), (0.038, 0.037),
               (0.038, 0.035), (0.03, 0.028), (0.026, 0.024)], "arm", [[(f, 0.0)] * m.K for f in frac])
        _hand(m, B, g, el, wr)
        hip, kn, an = s[f"{sd}_hip"], s[f"{sd}_knee"], s[f"{sd}_ankle"]
        leg = [("j", 0, -0.1, 0.12), ("j", 0, 0.0, 0.12), ("t", 0, 0.3), ("t", 0, 0.65), ("j", 1, -0.04, 0.05),
               ("j", 1, 0.0, 0.05), ("j", 1, 0.04, 0.05), ("t", 1, 0.35), ("t", 1, 0.7), ("j", 2, 0.0, 0.04)]
        build = np.array([lk.build for lk in looks])
        _limb(body, m, B, g * np.sqrt(build), [hip, kn, an], par[hip], leg,
              [(0.07, 0.075), (0.085, 0.088), (0.078, 0.082), (0.066, 0.07), (0.054, 0.057), (0.052, 0.056), (0.053, 0.056),
               (0.054, 0.06), (0.043, 0.046), (0.04, 0.042)], "trousers")
        _shoe(m, B, g, an, s[f"{sd}_toe"])


def _hand(m, B, g, el, wr) -> None:
    d = _u(B[:, wr] - B[:, el])
    side, front = _frame(d)
    offs = np.array([0.0, 0.03, 0.07, 0.115, 0.155])
    C = B[:, wr][:, None] + offs[None, :, None] * g[:, None, None] * d[:, None]
    rs = np.array([0.022, 0.019, 0.018, 0.015, 0.007])[None] * g[:, None]
    rf = np.array([0.025, 0.04, 0.042, 0.033, 0.012])[None] * g[:, None]
    m.part(C, side[:, None], front[:, None], rs, rf, ["skin"] * 5, [[(wr, 1.0)]] * 5)


def _shoe(m, B, g, an, toe) -> None:
    a = B[:, an]
    G = g[:, None]
    if toe >= 0:
        t = B[:, toe]
        sole = t[:, 2] - 0.035 * g
        xt = t[:, 0] - a[:, 0]
    else:
        sole = a[:, 2] - 0.095 * g
        xt = 0.12 * g
    top_a = a[:, 2] + 0.015 * g
    xs = np.stack([-0.065 * g, -0.035 * g, 0.02 * g, 0.06 * g, xt, xt + 0.04 * g, xt + 0.065 * g], 1)  # [A,7] from the ankle
    tops = np.stack([top_a, top_a + 0.01 * g, top_a + 0.005 * g, sole + 0.7 * (a[:, 2] - sole), sole + 0.065 * g,
                     sole + 0.05 * g, sole + 0.03 * g], 1)
    half_w = np.array([0.036, 0.041, 0.044, 0.046, 0.047, 0.043, 0.028])[None] * G
    C = np.stack([a[:, 0:1] + xs, np.repeat(a[:, 1:2], 7, 1), 0.5 * (tops + sole[:, None])], -1)
    rf = 0.5 * (tops - sole[:, None])
    if toe >= 0:
        from .body import blend_weights

        ws = [[(an, 1.0)]] * 4 + [blend_weights(an, toe, 0.0), blend_weights(an, toe, 0.8), [(toe, 1.0)]]
    else:
        ws = [[(an, 1.0)]] * 7
    m.part(C, np.array([0.0, -1, 0]), np.array([0.0, 0, 1]), half_w, rf, ["shoes"] * 7, ws)
