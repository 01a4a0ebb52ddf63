"""The ``cuecap`` command line: thin adapters over the engine's modules."""
