"""The adapters rule files ask for: the MQTT client (``settings.mqtt``), the notifier
(``targets:``) and the site's NATS link (``settings.cluster``), built for
``Engine(rules, adapters=rule_adapters(rules))``, and rebuilt when a reload changes them.

The MQTT client comes first: adapters close in reverse order, so it is the
last to go and still publishes the notifier's final ``send.*`` events.

A reload (``Engine.apply``) carries out its plan here, once the new rules run:

- ``settings.mqtt`` changed: a client for the new settings starts and takes
  over what the old one had not published (``MqttAdapter.start(replacing=)``);
  then the old one says ``offline`` to its broker and disconnects (bounded by
  ``engine.mqtt.client.CLOSE_TIMEOUT``). Added: a client starts; removed: the
  client closes the same way.
- ``targets`` changed: the notifier takes them (``Notifier.use``): every target
  keeps its queue, and what is queued goes with the new settings. With no
  notifier yet (the first targets), one starts.
- ``settings.cluster`` and ``settings.http`` apply at the next start only
  (``AT_NEXT_START`` says why); the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.rules.loader import RuleSet

if TYPE_CHECKING:
    from engine.runtime.core import ReloadPlan
    from engine.runtime.engine import Adapter, Engine

log = logging.getLogger("engine.reload")

# Why these are not rebuilt while the engine runs.
AT_NEXT_START = {
    "settings.cluster": "the cluster link decides which engine of the site runs each schedule "
    "fire; swapped while running, a fire could run on two engines or on none",
    "settings.http": "the HTTP server's socket is bound, with --http, --no-http and "
    "--http-token, before the engine starts",
}


def rule_adapters(rules: RuleSet, env: Mapping[str, str] | None = None) -> list[Adapter]:
    """The adapters ``rules`` need; ``env`` holds the secrets (default: ``os.environ``)."""
    out: list[Adapter] = []
    if rules.settings.mqtt is not None:
        from engine.mqtt.client import MqttAdapter

        out.append(MqttAdapter(rules.settings.mqtt, env=env))
    if rules.targets:
        from engine.notify.notifier import Notifier

        out.append(Notifier(rules.targets, env=env))
    if rules.settings.cluster is not None:
        from engine.cluster.site import ClusterAdapter

        out.append(ClusterAdapter(rules.settings.cluster, env=env))
    return out


async def reload_adapters(
    engine: Engine, plan: ReloadPlan, env: Mapping[str, str] | None = None
) -> None:
    """Carry out what ``plan`` says of the adapters; ``engine.rules`` are the new rules.

    ``env``: the secrets of an adapter that did not run before (one replacing
    another reads where the old one read).
    """
    if plan.mqtt:
        await _swap_mqtt(engine, env)
    if plan.targets:
        await _use_targets(engine, env)
    for what in plan.at_next_start:
        log.warning("%s changed: that applies when cuecap run starts again (%s); until then "
                    "it stays as it was", what, AT_NEXT_START[what])  # fmt: skip


async def _swap_mqtt(engine: Engine, env: Mapping[str, str] | None) -> None:
    from engine.mqtt.client import MqttAdapter

    adapters = engine.adapters
    old = next((a for a in adapters if isinstance(a, MqttAdapter)), None)
    settings = engine.rules.settings.mqtt
    if settings is None:
        if old is not None:
            await old.aclose()
            adapters.remove(old)
            log.info("settings.mqtt removed: disconnected from %s", old.where)
        return
    new = MqttAdapter(settings, env=old.env if old is not None else env)
    # Both stay listed until the old one is closed, so a stop in the middle closes both.
    adapters.insert(adapters.index(old) if old is not None else 0, new)
    await new.start(engine, replacing=old)
    if old is None:
        log.info("settings.mqtt added: connecting to %s", new.where)
        return
    await old.aclose()
    adapters.remove(old)
    log.info("settings.mqtt changed: events now go to %s (was %s); %d queued messages handed "
             "over", new.where, old.where, old.handed_over)  # fmt: skip


async def _use_targets(engine: Engine, env: Mapping[str, str] | None) -> None:
    from engine.mqtt.client import MqttAdapter
    from engine.notify.notifier import Notifier

    adapters = engine.adapters
    targets = engine.rules.targets
    names = ", ".join(sorted(targets)) or "none"
    notifier = next((a for a in adapters if isinstance(a, Notifier)), None)
    if notifier is not None:
        queued = notifier.use(targets)
        log.info("targets changed (now: %s): the next sends go with the new settings; %d queued "
                 "kept", names, queued)  # fmt: skip
        return
    if not targets:
        return
    notifier = Notifier(targets, env=env)
    # After the MQTT client: adapters close in reverse, so its last send.* events go out.
    at = next((i for i, a in enumerate(adapters) if not isinstance(a, MqttAdapter)), len(adapters))
    adapters.insert(at, notifier)
    await notifier.start(engine)
    log.info("targets added (%s): sending starts now", names)
