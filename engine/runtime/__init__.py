"""The engine runtime: one asyncio loop running sources, recorders, shots and rules."""
