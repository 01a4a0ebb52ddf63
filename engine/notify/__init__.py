"""Notifications: the ``send`` action's targets (webhook, e-mail, Telegram).

``config`` is the ``targets:`` section; ``message`` and ``spam`` decide what
goes out and when, without I/O; ``targets`` delivers one message by one
try; ``notifier`` is the adapter with a bounded queue and retries per target.
"""
