"""Command-line recipes of gpt-origins: `python -m recipes.<name> --help`."""
