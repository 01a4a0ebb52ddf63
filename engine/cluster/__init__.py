"""Many engines, one site: schedules, shot limits and events shared over NATS JetStream.

Nothing here is imported unless ``settings: cluster:`` is set; an engine
without it needs no server and no ``nats-py``. See docs/cluster.md.
"""
