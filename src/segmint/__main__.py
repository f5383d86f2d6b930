"""``python -m segmint``: the command line, as the ``segmint`` script runs it.

Preparation processes do not run a ``__main__`` module of a package again, so they start
without loading the command line (see :mod:`segmint.cli`)."""

from segmint.cli import run

if __name__ == "__main__":
    run()
