"""The status page, JSON API and Prometheus metrics of a running engine.

``config`` (settings, options) and ``security`` (the access rules) are pure
and light; ``app`` and ``server`` import FastAPI and uvicorn, only when the
server runs.
"""
