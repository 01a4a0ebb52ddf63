"""The adapters rule files ask for: the MQTT client (``settings.mqtt``), the notifier
(``targets:``) and the site's NATS link (``settings.cluster``), built for
``Engine(rules, adapters=rule_adapters(rules))``.

The MQTT client comes first: adapters close in reverse order, so it is the
last to go and still publishes the notifier's final ``send.*`` events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.rules.loader import RuleSet

if TYPE_CHECKING:
    from engine.runtime.engine import Adapter


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
