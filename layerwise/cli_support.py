"""What every `layerwise` command shares: the -s and --json options, printing, --threads, and the
mapping of errors to one line and an exit code."""

import contextlib
import functools
import sys

import click

set_option = click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config value (typed as YAML), e.g. -s optimizer.lr=0.05. Repeatable.",
)


class Command(click.Group):
    """The `layerwise` group: what click itself prints (--help, --version, a usage error) goes through the
    same stdout check as every command, so `layerwise --help > /dev/full` is one error line, exit code 4."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except OSError as e:
            if e.filename is not None or isinstance(e, BrokenPipeError):
                raise
            _stdout_failed(e)


def say(message="", err=False, nl=True):
    """click.echo for everything a command prints: control characters in untrusted text (class names from a
    checkpoint, file names) are escaped, so they cannot drive the terminal."""
    from .util.text import printable

    click.echo(printable(str(message)), err=err, nl=nl)


def computes(command):
    """--threads N (or $LAYERWISE_THREADS): the command's BLAS thread count, set before it computes."""

    @click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
                  help="BLAS threads for NumPy's matrix products (default: $LAYERWISE_THREADS, else the library's).")
    @functools.wraps(command)
    def wrapper(*args, threads=None, **kwargs):
        from .util.threads import limited

        with limited(threads):
            return command(*args, **kwargs)

    return wrapper


def reports_errors(command):
    """Turn a LayerwiseError into a one-line message and its exit code; bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .errors import LayerwiseError
        from .run.signals import answer_signals, cause_and_code

        notes = []
        try:
            with answer_signals():  # Ctrl-C and SIGTERM in any phase: cleanups run, then one line below
                with _collect_notes(notes):
                    result = command(*args, **kwargs)
                for note in notes:  # after the command's output; a command that fails says only its error
                    say(f"note: {note}", err=True)
                sys.stdout.flush()  # a full disk shows here, inside the one-line error handling
            return result
        except LayerwiseError as e:
            say(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            cause, code = cause_and_code(e)
            say(f"error: {cause} before the command finished; no file is left half-written", err=True)
            sys.exit(code)
        except OSError as e:
            # Writing our own output failed (stdout on a full disk, `> /dev/full`): every file layerwise
            # writes itself reports a StorageError, so a bare OSError without a file name is stdout's.
            if e.filename is not None or isinstance(e, BrokenPipeError):
                raise
            _stdout_failed(e)

    return wrapper


@contextlib.contextmanager
def _collect_notes(notes):
    """InputWarnings (float pixels scaled, a blank image) raised while the command runs, collected into
    `notes` (printed as `note: ...` lines on stderr once it succeeds); other warnings shown as Python shows them."""
    import warnings

    from .errors import InputWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, InputWarning):
                notes.append(str(message))
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def _stdout_failed(e):
    import os

    from .util.fileio import describe_os_error

    try:
        sys.stdout = open(os.devnull, "w")  # what is still buffered for the old stdout can go nowhere
    except OSError:
        pass
    say(f"error: cannot write to standard output: {describe_os_error(e)}", err=True)
    sys.exit(4)


_documents = []  # the real stdout of each running --json command (innermost last)


def json_option(command):
    """--json: stdout carries one JSON document and nothing else. While the command runs, sys.stdout *is*
    stderr, so every note (a CSV's columns, a mirror failing, a progress line, even a library's print)
    goes there; only `say_json` writes to the real stdout."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (notes go to stderr).")
    @functools.wraps(command)
    def wrapper(*args, as_json=False, **kwargs):
        if not as_json:
            return command(*args, as_json=False, **kwargs)
        out = sys.stdout
        _documents.append(out)
        sys.stdout = sys.stderr
        try:
            return command(*args, as_json=True, **kwargs)
        finally:
            sys.stdout = out
            _documents.pop()

    return wrapper


def say_json(document):
    """The command's JSON document, on the real stdout (flushed here, so a full disk is reported as one line)."""
    from .util.fileio import json_text
    from .util.text import printable

    out = _documents[-1] if _documents else sys.stdout
    click.echo(printable(json_text(document)), file=out)
    out.flush()


def _echo(as_json):
    """Where a command's progress and notes go: stderr when stdout carries the JSON document."""
    return functools.partial(say, err=True) if as_json else say
