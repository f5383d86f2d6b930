"""Living audiences: lifecycle, refresh, history, usage, scheduling."""
