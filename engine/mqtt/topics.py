"""MQTT topic names and filters: validation and matching, with no I/O.

The rule loader checks every topic a rule file names here, so a filter that a
broker would refuse (``a/#/b``, ``a+``) is an error with its position at load,
not a subscription that fails once the engine runs. The same rules decide
which watched filter an incoming message matches.

MQTT 3.1.1 section 4.7: levels are separated by ``/``; ``+`` matches one
level and must fill its level; ``#`` matches any number of levels and must
be the last level; topic names (what is published to) contain neither.
Topics starting with ``$`` (broker internals) are matched by a filter only
when the filter names the ``$`` level itself.
"""

from __future__ import annotations

MAX_TOPIC_BYTES = 65535  # the protocol's length field


def filter_problem(text: str) -> str | None:
    """Why ``text`` is not a valid topic filter (None when it is)."""
    problem = _common(text)
    if problem:
        return problem
    levels = text.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"'#' must be a whole level and the last one (in {text!r})"
        if "+" in level and level != "+":
            return f"'+' must fill a whole level (in {text!r}); write e.g. a/+/b"
    return None


def topic_problem(text: str) -> str | None:
    """Why ``text`` is not a valid topic name to publish to (None when it is)."""
    problem = _common(text)
    if problem:
        return problem
    if "+" in text or "#" in text:
        return f"a topic to publish to has no wildcards ('+', '#'): {text!r}"
    return None


def _common(text: str) -> str | None:
    if not text:
        return "a topic cannot be empty"
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        return f"a topic is at most {MAX_TOPIC_BYTES} bytes"
    if "\0" in text:
        return "a topic cannot contain the NUL character"
    return None


def matches(topic: str, topic_filter: str) -> bool:
    """Whether a message published to ``topic`` is one a subscription to ``topic_filter`` gets."""
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for i, level in enumerate(wanted):
        if level == "#":
            return True
        if i >= len(levels):
            return False
        if level != "+" and level != levels[i]:
            return False
    return len(levels) == len(wanted)


def join(*parts: str) -> str:
    """Topic levels joined by ``/``, empty parts and stray slashes left out."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def level(name: str) -> str:
    """``name`` made fit for one topic level: wildcards and slashes become ``_``."""
    return "".join("_" if c in "+#/\0" else c for c in name) or "_"
