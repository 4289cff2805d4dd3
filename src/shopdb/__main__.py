"""``python -m shopdb`` runs the CLI."""

from shopdb.cli import main

main()
