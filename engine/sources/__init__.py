"""Event sources: adapters that turn a websocket, a recording or the simulator into frames."""
