"""MQTT: the engine's events out to a broker, ``mqtt`` triggers and commands in.

``topics`` and ``bridge`` are the pure core (what to publish for an event,
what a message asks for); ``config`` is ``settings.mqtt``; ``client`` is the
adapter that drives them against a broker in the engine's loop.
"""
