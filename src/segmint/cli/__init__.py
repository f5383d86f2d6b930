"""The command line: thin commands over the services.

:func:`run` is the ``segmint`` program's entry point. It is kept apart from
:mod:`segmint.cli.main`, which loads every command and what they use (the web app, the
catalog, the compiler...): a preparation process (:mod:`segmint.collect.workers`) is started
by running the parent's main script again, and with the ``segmint`` script that now costs an
import of this package only, instead of the whole command line (~0.8 s of CPU per process).
"""


def run() -> None:
    """Run the ``segmint`` command line."""
    from segmint.cli.main import app

    app()
