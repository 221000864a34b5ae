"""``python -m optxform``: the command line (see optxform/cli.py)."""

from optxform.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
