"""Rich progress display for library ProgressFn callbacks (stderr, so stdout stays clean for results)."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class RichProgress:
    """Context manager; pass the instance as `progress=` to library calls. One bar per stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr is not None
        self._p = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False,
            disable=not self.enabled,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> "RichProgress":
        self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._p.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        if stage not in self._tasks:
            self._tasks[stage] = self._p.add_task(stage, total=total, info=text)
        self._p.update(self._tasks[stage], completed=done, total=total, info=text)
