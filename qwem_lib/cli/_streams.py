"""Standard streams and failure reporting: where a command's output goes, and how its
failure becomes one line on stderr and an exit status.

Errors caused by input print ``qwem: error: ...`` and give status 2; a failed write
to standard output is told apart from the command's other failures; a closed pipe
stops quietly (141), an interrupt gives 130; a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from ..runtime.errors import QwemError


def log(msg: str) -> None:
    """A line of progress or summary on stderr."""
    print(msg, file=sys.stderr, flush=True)


def safe_streams() -> None:
    """Printing never fails on the characters printed: under an encoding that cannot
    hold them (PYTHONIOENCODING=ascii, a C locale) σ or × are written as escapes."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        try:
            unicode = codecs.lookup(encoding or "ascii").name in ("utf-8", "utf-16",
                                                                   "utf-32")
        except LookupError:
            unicode = False
        if not unicode and getattr(stream, "errors", None) == "strict" \
                and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def check_sink(flag: str, path) -> None:
    """Refuse, before any work, an output that is a device which accepts no bytes
    (/dev/full: every write fails with 'no space left'), which would fail only after
    the run, with the other outputs written."""
    if path is None:
        return
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return                   # not there (yet): check_outputs judged the folder
    if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) \
            == (1, 7):           # Linux's /dev/full, whatever it is called
        raise QwemError(f"cannot write {flag} {path}: it is a device that is always "
                        "full (/dev/full); choose a file, or /dev/null to discard it")


class _StdoutError(Exception):
    """Writing to standard output failed (a full disk, /dev/full, an I/O error)."""

    def __init__(self, cause: OSError):
        super().__init__(cause)
        self.cause = cause


class _Stdout:
    """``sys.stdout`` during a command: the same stream, but a failed write or flush
    is told apart from the other OSErrors of a command (:class:`_StdoutError`); a
    closed pipe stays a :class:`BrokenPipeError`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _StdoutError(exc) from None

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _StdoutError(exc) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _drop_stdout() -> None:
    """Point standard output at devnull, so that the interpreter's last flush of the
    bytes it could not write does not fail (and print a traceback) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file descriptor (a test's
        pass                                         # capture): nothing to drop
    finally:
        os.close(devnull)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings of qwem (and the libraries it calls) as one line each."""
    print(f"qwem: warning: {message}", file=sys.stderr, flush=True)


def _short(path, limit: int = 80) -> str:
    """A path for a message: at most ``limit`` characters, its start and its end."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    if len(text) <= limit:
        return text
    head, tail = text[:limit // 2 - 3], text[-(limit // 2):]
    return f"{head}...{tail} ({len(text):,} characters)"


def _option_of(args: argparse.Namespace, filename) -> str:
    """The option (or argument) whose value ``filename`` comes from, or ''."""
    name = os.fsdecode(filename) if isinstance(filename, (bytes, os.PathLike)) \
        else str(filename)
    found, best = "", 0
    for key, value in vars(args).items():
        if key in ("func", "command", "action"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and len(item) > best \
                    and (item in name or name in item):
                found, best = key, len(item)     # the longest match
    if not found:
        return ""
    return ("FILE" if found == "file" else "--" + found.replace("_", "-")) + " "


def _path_error(args: argparse.Namespace, exc: OSError) -> str:
    """One line for an OSError on a path the user named."""
    what = _option_of(args, exc.filename)
    where = _short(exc.filename)
    if exc.errno == errno.ENAMETOOLONG:
        return (f"{what}{where}: the name is too long (a file or folder name may hold "
                "at most 255 bytes on most file systems); choose a shorter name")
    return (f"cannot use {what}{where}: {exc.strerror or exc}; check the path and "
            "its permissions")


def _run_guarded(args: argparse.Namespace) -> int:
    """``args.func(args)`` with standard output guarded and warnings one line each;
    a standard output that fails (a full disk) fails at its last flush at the latest."""
    stdout = sys.stdout
    try:
        sys.stdout = _Stdout(stdout)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = args.func(args)
        sys.stdout.flush()      # a failing stdout (a full disk) is reported here
    finally:
        sys.stdout = stdout
    return code


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its failures become one line and an exit status."""
    try:
        return _run_guarded(args)
    except _StdoutError as exc:
        _drop_stdout()
        print(f"qwem: error: cannot write to standard output: "
              f"{exc.cause.strerror or exc.cause}; send it to a file with free space "
              "(or a pipe)", file=sys.stderr)
        return 2
    except QwemError as exc:
        print(f"qwem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qwem: interrupted; no partial output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `qwem tasks ... | head`): stop quietly.  Point
        # stdout at devnull so that the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.filename is None:           # not a path: a bug, with its traceback
            raise
        print(f"qwem: error: {_path_error(args, exc)}", file=sys.stderr)
        return 2
