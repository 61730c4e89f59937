"""``python -m distill ...`` and the ``distill`` console script: the command line.

The command needs the ``cli`` extra; without it this prints the ``pip install`` line and exits
with status 2 instead of a traceback.
"""

import sys

from distill._extras import require_extra


def main() -> None:
    """Run the ``distill`` command (console-script entry point)."""
    try:
        require_extra("cli")
    except ModuleNotFoundError as error:
        print(f"error: the distill command: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    from distill.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
