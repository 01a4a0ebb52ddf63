"""The recording format: PurpleDrop ``pdrecord`` records, with an index and manifest beside."""
