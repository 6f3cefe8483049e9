"""``python -m skipsearch``: the same as the ``skipsearch`` command."""

from skipsearch.cli import main

main()
