"""Activity-triggered recording: detectors, pre-roll, the decision core, state machine, segments."""
