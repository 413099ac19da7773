"""Contact events with hysteresis: one event per touch of a prop with something, not one per physics step.

MuJoCo's contact list flickers: a ball resting on the ground chatters in and out of contact every few milliseconds (micrometre
bounces of the stiff contact spring), and a box pushed by a walking leg touches and leaves many times per stride. An event
starts at the first physics step a (prop, other) pair is in contact and ends only after the pair has been apart for
`hold_s` (default 50 ms, five contact durations); a touch that comes back sooner continues the same event. The event's end
is the last step it was in contact; events still open when the clip ends have end_time None.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CONTACT_HOLD_S", "ContactTracker"]

CONTACT_HOLD_S = 0.05  # seconds apart before a contact counts as ended (a new touch after that is a new event)


def _frame(tm: float, fps: float) -> int:
    """The video frame a time falls in (frame t covers (t - 1/2, t + 1/2] / fps)."""
    return int(round(tm * fps - 0.5 + 1e-9)) if tm > 0 else 0


@dataclass
class ContactTracker:
    """Feed it the pairs in contact after every physics step (`update`); `events` holds one dict per touch:
    {"time", "frame", "prop", "with", "position", "end_time", "end_frame"} (times in seconds, frames of the video)."""

    fps: float
    hold_s: float = CONTACT_HOLD_S
    events: list[dict[str, Any]] = field(default_factory=list)
    _open: dict[tuple[int, str], int] = field(default_factory=dict)  # pair -> index in events
    _last: dict[tuple[int, str], float] = field(default_factory=dict)  # pair -> last time seen in contact

    def update(self, now: float, pairs: dict[tuple[int, str], np.ndarray]) -> None:
        """pairs: (prop, other label) -> contact point [3] of the pairs touching at time `now` (seconds)."""
        for key, pos in pairs.items():
            if key not in self._open:
                self._open[key] = len(self.events)
                self.events.append({"time": round(now, 5), "frame": _frame(now, self.fps), "prop": key[0], "with": key[1],
                                    "position": np.round(np.asarray(pos, np.float64), 4).tolist(), "end_time": None,
                                    "end_frame": None})
            self._last[key] = now
        for key in [k for k in self._open if k not in pairs and now - self._last[k] >= self.hold_s - 1e-12]:
            ev = self.events[self._open.pop(key)]
            end = self._last.pop(key)
            ev["end_time"], ev["end_frame"] = round(end, 5), _frame(end, self.fps)

    def active(self) -> list[tuple[int, str]]:
        """Pairs whose event is open (in contact, or apart for less than hold_s)."""
        return list(self._open)
