"""The ``reconciler`` command: a thin layer that parses arguments and calls the shell.

Each subcommand lives in its own module here and is imported only when it runs, so that
``reconciler validate`` does not pay for the web server or the dev cluster.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click


def _command_modules() -> list[str]:
    """Every module of this package is one subcommand, named like the module."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name.replace("_", "-") for name in _command_modules()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in _command_modules():
            return None
        module = importlib.import_module(f"reconciler.cli.{module_name}")
        command: click.Command = module.command
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """As click's, except that a usage error exits 1, the project's code for "error":
        click's 2 would read as "changes" to ``diff --exit-code`` and as "failed" to sync."""
        if kwargs.pop("standalone_mode", True) is False:
            # A caller that handles click's exceptions itself gets them unchanged.
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as e:
            e.show()
            sys.exit(1)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if isinstance(result, int) and result:
            sys.exit(result)  # ctx.exit(code): without standalone mode click returns it
        return result


@click.group(cls=LazyGroup)
@click.version_option(package_name="reconciler")
def main(**_: Any) -> None:
    """Keep Mesos Marathon equal to a Git repository."""
