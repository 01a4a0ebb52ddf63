"""Screenshots: bounded, retried shots from cameras, saved atomically."""
