"""``python -m chatbackend [--host H] [--port P]``: the development server (uvicorn).

``python -m chatbackend keys create --name NAME | list | revoke ID`` manages the API keys.
"""

from __future__ import annotations

import argparse
import sys

from chatbackend.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from chatbackend.access.admin import run_keys_command

        return run_keys_command(argv[1:])
    parser = argparse.ArgumentParser(prog="chatbackend", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"chatbackend: {exc}", file=sys.stderr)  # noqa: T201 - the one line an operator reads
        return 2
    import uvicorn

    from chatbackend.app import create_app
    from chatbackend.httpprotocol import protocol_class

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        http=protocol_class(settings),
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
