"""Local east/north/up metres <-> WGS84 latitude / longitude / altitude (a small-area approximation: the ellipsoid's
radii at the origin's latitude), for EXIF GPS fixes read by COLMAP and written by the SYNTHETIC capture."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["lla_to_enu", "enu_to_lla"]

_A, _E2 = 6378137.0, 6.69437999014e-3  # WGS84 semi-major axis (m), eccentricity squared


def _radii(lat_deg: float) -> tuple[float, float]:
    """(prime vertical, meridian) radii of curvature in metres at a latitude."""
    s = math.sin(math.radians(lat_deg))
    rn = _A / math.sqrt(1 - _E2 * s * s)
    return rn, rn * (1 - _E2) / (1 - _E2 * s * s)


def lla_to_enu(lla: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Latitude/longitude (deg)/altitude (m) -> local east/north/up metres [3] around `origin`."""
    rn, rm = _radii(origin[0])
    return np.array([math.radians(lla[1] - origin[1]) * (rn + origin[2]) * math.cos(math.radians(origin[0])),
                     math.radians(lla[0] - origin[0]) * (rm + origin[2]), lla[2] - origin[2]])


def enu_to_lla(enu: np.ndarray, origin: tuple[float, float, float]) -> tuple[float, float, float]:
    """East/north/up metres around `origin` -> latitude, longitude (degrees), altitude (m): lla_to_enu's inverse."""
    rn, rm = _radii(origin[0])
    return (origin[0] + math.degrees(enu[1] / (rm + origin[2])),
            origin[1] + math.degrees(enu[0] / ((rn + origin[2]) * math.cos(math.radians(origin[0])))),
            origin[2] + float(enu[2]))
