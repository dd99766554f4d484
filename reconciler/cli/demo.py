"""``reconciler demo``: see the controller work in one command (the story: reconciler/demo/)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from reconciler.demo import stage, story


@click.command()
@click.option("--non-interactive", is_flag=True,
              help="Run the whole story without pausing; exit 0 only if every step behaved.")
@click.option("--example", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Config repo folder to start from (default: desired-state/).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the Git repo, the state and the logs go (default: a new temporary "
                   "folder, kept for a look afterwards).")
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=2.0,
              show_default=True, help="How often the controller polls Git and Marathon.")
@click.option("--deadline", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="Seconds a rollout may take before it is rolled back.")
@click.option("--step-timeout", type=click.FloatRange(min=1), default=180.0,
              show_default=True, help="Give up on a step after this many seconds.")
def command(non_interactive: bool, example: Path | None, workdir: Path | None,
            poll_interval: float, deadline: float, step_timeout: float) -> None:
    """Start a dev cluster and the controller on the example config repo, then show a release,
    a broken release rolled back automatically, and drift corrected.

    Interactive by default: press Enter between steps, Ctrl-C to stop at the end.
    """
    interactive = not non_interactive and sys.stdin.isatty()
    options = stage.Options(
        example=example or stage.default_example(),
        workdir=workdir or Path(tempfile.mkdtemp(prefix="reconciler-demo-")),
        interactive=interactive,
        timings=stage.Timings(poll_interval=poll_interval, deadline=deadline,
                             step_timeout=step_timeout))

    def pause(next_step: str) -> None:
        if interactive:
            click.prompt(f"\nPress Enter to {next_step}", default="", show_default=False,
                         prompt_suffix=" ")

    def wait_at_end() -> None:
        if interactive:
            click.echo("\nThe dev cluster and the controller keep running: press Ctrl-C to "
                       "stop them.")
            story.wait_forever()

    try:
        story.run(options, out=sys.stdout, pause=pause, wait_at_end=wait_at_end)
    except stage.StepFailed as e:
        click.echo(f"\ndemo failed: {e}", err=True)
        click.echo(f"logs: {options.workdir}/controller.log, {options.workdir}/devcluster.log",
                   err=True)
        sys.exit(1)
    except (KeyboardInterrupt, click.Abort):
        click.echo("\nstopped; child processes ended.", err=True)
        sys.exit(130)
    click.echo("\ndemo finished: every step behaved.")
