"""`python -m alula`: report what this installation provides."""

import sys

from alula import __version__, _bridge


def main() -> int:
    names = _bridge.message_names()
    print(f"alula {__version__} (native core: {_bridge.native_file()})")
    print(f"protocol: {len(names)} flyteidl-compatible message types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
