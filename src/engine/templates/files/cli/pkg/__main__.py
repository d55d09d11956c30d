"""The command line of {{name_kebab}}: python3 -m {{name_snake}} --help."""

import argparse
import sys

from . import __version__


def main(argv=None):
    parser = argparse.ArgumentParser(prog="{{name_kebab}}", description="Greets someone.")
    parser.add_argument("who", nargs="?", default="world", help="whom to greet")
    parser.add_argument("--shout", action="store_true", help="greet in capitals")
    parser.add_argument("--version", action="version", version=__version__)
    args = parser.parse_args(argv)
    text = f"Hello, {args.who}!"
    print(text.upper() if args.shout else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
