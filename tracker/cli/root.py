"""The typer app: every command, the root `--db` option, and usage errors turned into one line.

Heavy modules are imported inside commands, so that `tracker --help` starts quickly.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from tracker.cli import db as _db  # noqa: F401  (registers its commands)
from tracker.cli import publish as _publish  # noqa: F401
from tracker.cli import register as _register
from tracker.cli import report as _report  # noqa: F401
from tracker.cli import review as _review  # noqa: F401
from tracker.cli import sources as _sources  # noqa: F401
from tracker.cli.common import STATE, app
from tracker.cli.shared import fail, user_errors

__all__ = ["app", "run_typer"]


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database path or SQLAlchemy URL (default: $TRACKER_DB or ./commitments.db).",
        ),
    ] = None,
) -> None:
    STATE.reset(db)
    if ctx.invoked_subcommand is None:
        ctx.invoke(_register.status)


def _click_exceptions() -> Any:
    # Newer typer vendors click as typer._click; older releases use the click package.
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # pragma: no cover - depends on the installed typer
        return importlib.import_module("click.exceptions")


def _plain_coercion() -> None:
    """Coerce `str`, `Path` and flag options without loading pydantic.

    Newer typer coerces every option value that is not already a bool through a pydantic
    TypeAdapter, built on first use (even for `--help`, whose value is None): importing pydantic
    and building the adapters is about a third of the start-up of `tracker refresh --quiet`. For
    a `str` (a string stays itself), a `Path` (typer's own `coerce_cli_path`, which is what its
    adapter calls, given the Path pydantic would make) and a flag (None and bools stay as they
    are) the same is done here directly; anything else goes to typer's adapter as before. A
    typer without these internals is left alone.
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_path, routes_to_path
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - depends on the installed typer
        return
    if getattr(_TyperParameter, "_tracker_plain", False):
        return
    from pathlib import Path

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is str and isinstance(value, str):
                return value
            if self.annotation is bool and isinstance(value, bool):
                return value
            if self.annotation is Path and isinstance(value, str | Path):
                path = Path(value)  # what pydantic makes of a string
                info = self.parameter_info
                return coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)
            return build_runtime_param(param.type_descriptor)._coerce_value(value, param, ctx)

    def plain(known: Any) -> bool:
        info, annotation = known.parameter_info, known.annotation
        if info.parser is not None or known.file_annotation is not None:
            return False
        if annotation is str:
            return known.choices is None
        if annotation is Path:
            return info.path_type is None and routes_to_path(annotation, info)
        return annotation is bool

    typer_way = _TyperParameter.get_runtime_param

    def get_runtime_param(self: Any) -> Any:
        # A typer whose internals moved on (other fields, another constructor) gets its own
        # way for every option: slower to start, never wrong.
        with contextlib.suppress(AttributeError, TypeError):
            if self._runtime_param is None and plain(self.type_descriptor):
                known = self.type_descriptor
                self._runtime_param = Plain(
                    parameter_info=known.parameter_info, annotation=known.annotation
                )
        return typer_way(self)

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010
    setattr(_TyperParameter, "_tracker_plain", True)  # noqa: B010


def run_typer(argv: list[str]) -> None:
    """Parse `argv` with typer and run the command; usage errors end as one line (exit 2)."""
    ex = _click_exceptions()
    _plain_coercion()
    command = typer.main.get_command(app)
    with user_errors():
        try:
            rv = command.main(args=argv, prog_name="tracker", standalone_mode=False)
        except typer.Abort:
            fail("aborted", 130)
        except typer.Exit as exc:
            raise SystemExit(exc.exit_code) from None
        except getattr(ex, "NoArgsIsHelpError", ()) as exc:
            typer.echo(exc.ctx.get_help())
            raise SystemExit(0) from None
        except ex.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx else "tracker"
            fail(f"{exc.format_message()} (see '{path} --help')".replace("\n", " "), 2)
        except ex.ClickException as exc:
            fail(exc.format_message().replace("\n", " "), exc.exit_code or 1)
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
