"""Drawing a recorder's state machine: mermaid text, or an image when Graphviz is there.

The drawing is built from the same transition table the running recorder
uses (``machine.TRANSITIONS``), with edges labelled by the recorder's own
settings (post-roll, limits, what counts as activity), so what you see is what
runs. Mermaid needs nothing installed; images need the ``graphviz`` Python
package and Graphviz's ``dot`` program.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.errors import CuecapError
from engine.recorder.config import (
    ChangedDetectorConfig,
    DetectorConfig,
    MessageDetectorConfig,
    RateDetectorConfig,
    RecorderConfig,
    StepDetectorConfig,
    ThresholdDetectorConfig,
    WhereDetectorConfig,
)
from engine.recorder.machine import DISABLED, IDLE, STATES, describe

if TYPE_CHECKING:  # only in the stubs of transitions
    from transitions.extensions.diagrams_base import GraphProtocol

IMAGE_SUFFIXES = frozenset({".png", ".svg", ".pdf", ".jpg", ".jpeg", ".gif"})


class GraphError(CuecapError, RuntimeError):
    """The drawing cannot be made (e.g. Graphviz missing for an image)."""


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _detector(config: DetectorConfig) -> str:
    if isinstance(config, MessageDetectorConfig):
        return " or ".join(config.types)
    if isinstance(config, ChangedDetectorConfig):
        return f"{config.field} changed"
    if isinstance(config, ThresholdDetectorConfig):
        side = f"above {config.above:g}" if config.above is not None else f"below {config.below:g}"
        return f"{config.field} {side}"
    if isinstance(config, StepDetectorConfig):
        return f"{config.field} steps by more than {config.delta:g}"
    if isinstance(config, RateDetectorConfig):
        what = " or ".join(config.types) if config.types else "messages"
        return f"{what} above {config.per_second:g}/s"
    if isinstance(config, WhereDetectorConfig):
        return f"where {config.where}"
    return config.type  # pragma: no cover - the union is closed


def edge_labels(config: RecorderConfig) -> dict[str, str]:
    """Trigger name -> label describing it with this recorder's settings."""
    activity = " or ".join(_detector(d) for d in config.activity) or "no detectors (manual only)"
    if config.min_activity > 1:
        activity += f" ({config.min_activity} hits within {_seconds(config.activity_window)})"
    quiet = min(config.activity_window, config.post_roll)
    limits = []
    if config.max_segment_seconds is not None:
        limits.append(_seconds(config.max_segment_seconds))
    if config.max_segment_bytes is not None:
        limits.append(f"{config.max_segment_bytes} bytes")
    labels = {
        "activity": f"activity: {activity}",
        "quiet": f"no activity for {_seconds(quiet)}",
        "resume": "activity",
        "timeout": f"no activity for post_roll {_seconds(config.post_roll)}",
        "rotate": f"rotate at {' or '.join(limits)}" if limits else "rotate (no limit set)",
        "start": "start (manual)",
        "stop": "stop (manual)",
        "hold": "start (manual)",
        "fail": "write error",
        "recover": f"retry after {_seconds(config.retry_after)}" if config.retry_after else "retry",
    }
    return labels


def build_graph_machine(
    name: str, config: RecorderConfig, engine: Literal["graphviz", "mermaid"] = "mermaid"
) -> GraphProtocol:
    """A drawable (non-running) machine with the recorder's states, transitions and labels."""
    from transitions.extensions import GraphMachine

    class _Model:
        get_graph: Callable[[], GraphProtocol]  # added by GraphMachine

    model = _Model()
    labels = edge_labels(config)
    # Mermaid reads ':' as the start of an edge label and ';' as the end of a line.
    labels = {k: v.replace(":", " -").replace(";", ",") for k, v in labels.items()}
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=describe(labels),
        initial=IDLE if config.enabled else DISABLED,
        auto_transitions=False,
        title=f"recorder {name}",
        graph_engine=engine,
        show_state_attributes=False,
    )
    return model.get_graph()


def mermaid(name: str, config: RecorderConfig) -> str:
    """The state machine as mermaid ``stateDiagram-v2`` text."""
    return str(build_graph_machine(name, config, "mermaid").draw(None))


def draw_image(name: str, config: RecorderConfig, path: str | Path) -> Path:
    """Render to an image file (format from the suffix) with Graphviz."""
    target = Path(path)
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise GraphError(
            f"cannot draw {target.name}: images need Graphviz (pip install graphviz, plus the 'dot' "
            "program); write mermaid text instead with -o FILE.mmd"
        ) from None
    graph = build_graph_machine(name, config, "graphviz")
    try:
        graph.draw(str(target), format=target.suffix.lstrip(".").lower(), prog="dot")
    except (
        Exception
    ) as exc:  # graphviz raises its own types (ExecutableNotFound, CalledProcessError)
        raise GraphError(f"cannot draw {target}: {exc}") from None
    return target
