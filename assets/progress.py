"""Progress reporting without printing: library code calls a ProgressFn; the CLI turns it into a rich progress bar."""
from __future__ import annotations

from typing import Any, Callable, Optional

# progress(stage, done, total, info): `stage` names the step ("features", "train"), `total` may be None when unknown,
# `info` carries numbers worth showing (loss, psnr, it/s). Library code must accept progress=None.
ProgressFn = Callable[[str, int, Optional[int], dict[str, Any]], None]


def report(progress: ProgressFn | None, stage: str, done: int, total: int | None = None, **info: Any) -> None:
    """Call `progress` if one was given."""
    if progress is not None:
        progress(stage, done, total, info)
