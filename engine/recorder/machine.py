"""One state machine per recorder: idle, recording, cooling down, disabled, error, closed.

The machine is a ``transitions`` ``AsyncMachine``. It is the recorder's public
state, the one place that announces ``recording.started`` / ``stopped`` /
``error``, and what ``cuecap graph`` draws. It is triggered only when the
decision core (``decisions.py``) reports a state change, never per frame.

Every callback is plain synchronous code, so a trigger's coroutine finishes
without ever suspending. ``fire`` exploits that to run triggers from the
synchronous hot path (``Recorder.feed``): it drives the coroutine to completion
on the spot and raises if it ever tried to wait. That keeps state changes in
order with the frames that caused them: the record after a ``stop`` is never
written into the stopped segment. The one asynchronous part is the error
state's retry: an ``AsyncTimeout`` (not the thread-based ``Timeout``, which
silently never fires under asyncio) that tries again after ``retry_after``
wall-clock seconds when an event loop is running. Post-roll is *not* an
``AsyncTimeout``: it is measured in receive times, so replays decide exactly
what live runs did.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import Task
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from transitions.extensions.asyncio import AsyncMachine, AsyncState, AsyncTimeout

if TYPE_CHECKING:  # names only the stubs of transitions have
    from transitions.extensions.asyncio import (
        AsyncCallbackFunc,
        AsyncEventData,
        AsyncTransitionConfigDict,
    )

from engine.errors import InvalidState
from engine.events import EventKind
from engine.recorder.decisions import RecorderState

# transitions treats Enum states by their names: the machine is given the plain values,
# which compare equal to the ``RecorderState`` members.
IDLE, RECORDING, COOLING_DOWN, DISABLED, ERROR, CLOSED = (
    RecorderState.IDLE.value,
    RecorderState.RECORDING.value,
    RecorderState.COOLING_DOWN.value,
    RecorderState.DISABLED.value,
    RecorderState.ERROR.value,
    RecorderState.CLOSED.value,
)
STATES = tuple(state.value for state in RecorderState)

RECORDING_STARTED = EventKind.RECORDING_STARTED
RECORDING_STOPPED = EventKind.RECORDING_STOPPED
RECORDING_ERROR = EventKind.RECORDING_ERROR

log = logging.getLogger(__name__)

_OPEN = [RECORDING, COOLING_DOWN]
TRANSITIONS: list[AsyncTransitionConfigDict] = [
    {"trigger": "activity", "source": IDLE, "dest": RECORDING},
    {"trigger": "start", "source": IDLE, "dest": RECORDING},
    {"trigger": "hold", "source": _OPEN, "dest": RECORDING},
    {"trigger": "quiet", "source": RECORDING, "dest": COOLING_DOWN},
    {"trigger": "resume", "source": COOLING_DOWN, "dest": RECORDING},
    {"trigger": "rotate", "source": _OPEN, "dest": None},
    {"trigger": "timeout", "source": _OPEN, "dest": IDLE},
    {"trigger": "stop", "source": _OPEN, "dest": IDLE},
    {"trigger": "fail", "source": [IDLE, *_OPEN], "dest": ERROR},
    {"trigger": "recover", "source": ERROR, "dest": IDLE},
    {"trigger": "disable", "source": [IDLE, *_OPEN, ERROR], "dest": DISABLED},
    {"trigger": "enable", "source": DISABLED, "dest": IDLE},
    {"trigger": "close", "source": [IDLE, *_OPEN, DISABLED, ERROR], "dest": CLOSED},
]
"""The transition table; the runtime machine and ``cuecap graph`` both use it."""

Notify = Callable[[str, Mapping[str, object]], None]

_T = TypeVar("_T")


def run_now(coroutine: Coroutine[object, None, _T]) -> _T:
    """Run a coroutine that never suspends to its end, synchronously."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: _T = done.value  # what the coroutine returned
        return result
    coroutine.close()
    raise InvalidState(
        "a recorder state-machine callback tried to wait; callbacks must be synchronous"
    )


class _RetryState(AsyncTimeout):
    """``AsyncTimeout`` that arms only when an event loop runs (virtual-time use has none)."""

    def create_timer(self, event_data: AsyncEventData) -> Task[Any]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # transitions stores the timer and skips a None when it cancels timers
            return None  # type: ignore[return-value]
        return super().create_timer(event_data)


class _Lifecycle:
    """The model the machine moves; ``state`` is the recorder's public state."""

    state: str
    trigger: Callable[..., Coroutine[Any, Any, bool]]  # added by the machine


class RecorderMachine(AsyncMachine):
    """The lifecycle of one recorder; ``notify(event_name, data)`` receives its announcements.

    Triggers carry keyword data: ``started``/``stopped``/``error`` mappings are
    announced as ``recording.started``/``recording.stopped``/``recording.error``
    after the state changed (a rotation announces both, stopped first).
    """

    def __init__(
        self,
        name: str,
        notify: Notify,
        *,
        initial: str = IDLE,
        retry_after: float | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.recorder_name = name
        self._notify = notify
        self.lifecycle = _Lifecycle()
        states: list[AsyncState] = []
        for state in STATES:
            if state == ERROR and retry_after and on_retry is not None:
                states.append(
                    _RetryState(state, timeout=retry_after, on_timeout=lambda _event: on_retry())
                )
            else:
                states.append(AsyncState(state))
        super().__init__(
            model=self.lifecycle,
            states=states,
            transitions=TRANSITIONS,
            initial=str(initial),  # a plain value, as the states are
            auto_transitions=False,
            send_event=True,
            after_state_change=self._announce,
            name=f"recorder {name}",
        )

    # Callbacks never wait, so run them one after another instead of gathering them as tasks.
    @staticmethod
    async def await_all(callables: list[AsyncCallbackFunc]) -> list[bool | None]:
        return [await func() for func in callables]

    async def process_context(self, func: Callable[[], Awaitable[None]], model: object) -> bool:
        # Nothing ever suspends mid-transition, so there is no running transition to cancel.
        return await self._process_async(func, model)

    @property
    def state(self) -> str:
        return self.lifecycle.state

    def fire(self, trigger: str, **data: object) -> None:
        """Run one trigger now (synchronously); an illegal one raises ``MachineError``."""
        run_now(self.lifecycle.trigger(trigger, **data))

    def _announce(self, event: AsyncEventData) -> None:
        data = event.kwargs
        log.debug(
            "recorder %s: %s -> %s (%s)",
            self.recorder_name,
            event.transition.source,
            event.state.name,
            event.event.name,
        )
        for key, name in (
            ("stopped", RECORDING_STOPPED),
            ("started", RECORDING_STARTED),
            ("error", RECORDING_ERROR),
        ):
            payload = data.get(key)
            if payload is not None:
                try:
                    self._notify(name, payload)
                except Exception:
                    log.exception("recorder %s: a listener of %s failed", self.recorder_name, name)


def describe(triggers: Mapping[str, str] | None = None) -> list[AsyncTransitionConfigDict]:
    """The transition table with triggers renamed for display (``cuecap graph``)."""
    names = dict(triggers or {})
    return [{**t, "trigger": names.get(t["trigger"], t["trigger"])} for t in TRANSITIONS]


__all__ = [
    "CLOSED",
    "COOLING_DOWN",
    "DISABLED",
    "ERROR",
    "IDLE",
    "RECORDING",
    "TRANSITIONS",
    "RecorderMachine",
]
