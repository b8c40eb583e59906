"""``python -m curation.simulator``: the command name users know for the offline expert simulator, which lives
in :mod:`synthetic.simulator` with the rest of the embedded default's outside world (docs/architecture.md)."""
