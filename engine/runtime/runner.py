"""Running rule firings as asyncio tasks, by each rule's mode.

The ``FiringPolicy`` decides; this adapter keeps the tasks: starts a run,
queues a firing, cancels running ones for ``restart``, and at shutdown either
lets in-flight runs finish within a deadline or cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from engine.rules.model import Rule
from engine.runtime.policy import Decision, FiringPolicy
from engine.runtime.rulebook import Firing, Rulebook

log = logging.getLogger("engine.rules")

Perform = Callable[[Rule, Firing], Coroutine[Any, Any, None]]


class _RuleTasks:
    __slots__ = ("rule", "running", "superseded", "waiting")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.running: set[asyncio.Task[None]] = set()
        self.superseded: set[asyncio.Task[None]] = set()
        self.waiting: deque[Firing] = deque()


class RuleRunner:
    """Starts, queues and cancels the runs of each rule; ``submit`` is called per firing."""

    def __init__(self, rulebook: Rulebook, perform: Perform) -> None:
        self.rulebook = rulebook
        self.perform = perform
        self._rules: dict[str, _RuleTasks] = {}
        self._accepting = True
        self.started = 0
        self.completed = 0
        self.cancelled = 0

    def use(self, rulebook: Rulebook) -> None:
        """Switch to a reloaded rulebook; runs in flight go on with their old rule."""
        self.rulebook = rulebook
        for name in list(self._rules):
            tasks = self._rules[name]
            if name in rulebook.rules and rulebook.rules[name] != tasks.rule:
                tasks.rule = rulebook.rules[name]
            if name not in rulebook.rules:
                tasks.waiting.clear()

    @property
    def in_flight(self) -> int:
        return sum(len(t.running) for t in self._rules.values())

    def submit(self, firing: Firing) -> Decision | None:
        """Run, queue or drop a firing as its rule's mode says; None once stopping."""
        if not self._accepting:
            return None
        rule = self.rulebook.rules.get(firing.rule)
        policy = self.rulebook.policies.get(firing.rule)
        if rule is None or policy is None:
            return None
        tasks = self._rules.get(firing.rule)
        if tasks is None:
            tasks = self._rules[firing.rule] = _RuleTasks(rule)
        tasks.rule = rule
        decision = policy.decide()
        if decision is Decision.DROP:
            log.debug("rule %s: firing dropped (mode %s, still running)", firing.rule, rule.mode)
        elif decision is Decision.QUEUE:
            tasks.waiting.append(firing)
        else:
            if decision is Decision.RESTART:
                for task in tasks.running:
                    tasks.superseded.add(task)
                    task.cancel()
                tasks.running.clear()
            self._start(tasks, policy, firing)
        return decision

    def _start(self, tasks: _RuleTasks, policy: FiringPolicy, firing: Firing) -> None:
        task = asyncio.get_running_loop().create_task(
            self.perform(tasks.rule, firing), name=f"rule {firing.rule} #{firing.count}"
        )
        tasks.running.add(task)
        self.started += 1
        task.add_done_callback(lambda t: self._done(tasks, policy, t))

    def _done(self, tasks: _RuleTasks, policy: FiringPolicy, task: asyncio.Task[None]) -> None:
        tasks.running.discard(task)
        if task.cancelled():
            self.cancelled += 1
        else:
            self.completed += 1
            error = task.exception()
            if error is not None:
                log.error("rule run %s failed", task.get_name(), exc_info=error)
        if task in tasks.superseded:
            tasks.superseded.discard(task)
            return  # a restart already counted its replacement
        if policy.finished() and tasks.waiting:
            if self._accepting:
                self._start(tasks, policy, tasks.waiting.popleft())
            else:
                tasks.waiting.clear()

    async def settle(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` real seconds) until no run is going; True if none is.

        Virtual time uses this: actions take no virtual time, so the stream waits
        for them, and a rule's mode decides as if each run ended at once.
        """
        running = [t for tasks in self._rules.values() for t in tasks.running]
        # Most runs (a log line, a recorder command) end in the loop's next turn and are
        # counted off in the one after: two turns, without a waiter and a timer per run.
        for _ in range(2):
            if not running:
                return True
            await asyncio.sleep(0)
            running = [t for tasks in self._rules.values() for t in tasks.running]
        while running:
            _, pending = await asyncio.wait(running, timeout=timeout)
            if pending:
                return False
            running = [t for tasks in self._rules.values() for t in tasks.running]
        return True

    async def stop(self, timeout: float) -> int:
        """Take no new firings, drop queued ones, let running ones finish for ``timeout`` s.

        Returns how many runs had to be cancelled.
        """
        self._accepting = False
        for tasks in self._rules.values():
            tasks.waiting.clear()
        running = [t for tasks in self._rules.values() for t in tasks.running]
        if not running:
            return 0
        _, pending = await asyncio.wait(running, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)
