"""Allows ``python -m reconciler``."""

from reconciler import cli

if __name__ == "__main__":
    cli.main()
