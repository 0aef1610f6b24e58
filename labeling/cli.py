"""How every command line of the project (labeling, rm.*, analysis.*) ends on bad input.

Bad input (a missing file, an unreadable row, a setting out of range, a folder that holds no
checkpoint, a Hub id that cannot be reached) is reported as one `error: ...` line on stderr,
with exit status 2 and no traceback; the library raises it as ValueError or OSError (their
subclasses included: DataError, FileNotFoundError, ...), with the message written for the user.
Anything else is a bug and keeps its traceback. Each CLI module ends with

    if __name__ == "__main__":
        raise SystemExit(run_cli(main))

Set RMLAB_TRACEBACK=1 to see the traceback of an input error too.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def error_line(error: BaseException) -> str:
    """The `error: ...` text for an input error (its message, or its type when it has none)."""
    return f"error: {str(error).strip() or type(error).__name__}"


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)` and return the process exit status: 2 after an input error (printed as
    one `error: ...` line), 130 after Ctrl-C, else `main`'s int result or 0."""
    try:
        result = main(argv)
    except INPUT_ERRORS as e:
        if os.environ.get("RMLAB_TRACEBACK"):
            raise
        print(error_line(e), file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
