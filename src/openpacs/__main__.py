"""`python -m openpacs` is the `openpacs` command."""

from openpacs.cli.main import cli

if __name__ == "__main__":
    cli()
