"""The outermost layer of the command: every expected failure becomes one line on stderr.

``PortwayGroup.main`` runs click in non-standalone mode and reports, on a single line
prefixed ``portway:``, usage mistakes (exit 2), API errors and transport failures
(exit 1). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, NoReturn

import click

from portway.cli.client import BadResponseError, UnreachableError
from portway.errors import PortwayError

USAGE_EXIT = 2
ERROR_EXIT = 1


def describe(error: PortwayError) -> str:
    """'409 Conflict: hostname x is already used' for API errors, the message otherwise."""
    if isinstance(error, UnreachableError | BadResponseError):
        return error.message
    try:
        title = HTTPStatus(error.status).phrase
    except ValueError:
        title = "Error"
    return f"{error.status} {title}: {error.message}"


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"portway: {message}", err=True)
    sys.exit(code)


def usage_line(error: click.UsageError) -> str:
    message = error.format_message().rstrip(".")
    if error.ctx is not None:
        return f"{message} (try '{error.ctx.command_path} --help')"
    return message


class PortwayGroup(click.Group):
    """A click group whose failures print one readable line and never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            fail(usage_line(exc), USAGE_EXIT)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except PortwayError as exc:
            fail(describe(exc), ERROR_EXIT)
        except click.Abort:
            fail("aborted", ERROR_EXIT)
        if not standalone_mode:
            return result
        # Non-standalone click returns the exit code of ctx.exit() (e.g. --help) or the
        # command's return value; only an int is an exit status.
        sys.exit(result if isinstance(result, int) else 0)
