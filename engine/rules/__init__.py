"""Rule files: what to run, validated with positions before anything starts."""

from engine.rules.errors import Location, RuleError, RuleFileError
from engine.rules.loader import RuleSet, load_rules, rule_files
from engine.rules.schedule import Schedule, ScheduleError, Window

__all__ = [
    "Location",
    "RuleError",
    "RuleFileError",
    "RuleSet",
    "Schedule",
    "ScheduleError",
    "Window",
    "load_rules",
    "rule_files",
]
