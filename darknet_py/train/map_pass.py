"""The `-map` pass of a training run must never end the run: the weights of hours of training are worth
more than one mAP number. Unreadable images of the `valid` list are skipped with a warning by the
evaluation itself (``skip_unreadable``); anything else that goes wrong is reported and training goes on.
The regular backups of the iteration are written before this pass, so even a crash inside it loses nothing."""
from __future__ import annotations

from typing import Callable


def evaluate_map_safely(evaluate: Callable[[], None], iteration: int, say=print) -> bool:
    """Run ``evaluate``; True when it finished, False (after a one-line warning) when it failed."""
    try:
        evaluate()
        return True
    except Exception as exc:     # noqa: BLE001 - any failure of the side pass; KeyboardInterrupt still stops
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        say(f"warning: the mAP at iteration {iteration} was not computed ({type(exc).__name__}: {reason}); "
            "training goes on")
        return False
