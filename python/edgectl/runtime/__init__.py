"""The controller runtime: clocks, scan scheduling, tags, alarms, interlocks, recipes."""
