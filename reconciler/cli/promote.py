"""``reconciler promote IMAGE --from certification --to production``: take an image's tag from
one environment to another once it has run healthy there for the soak time.

Reads the environments from the configuration (``RECONCILER_ENVIRONMENTS``, ``--config``),
the source environment's folder in the config repo, its Marathon and its records; when the
gate allows, commits the target's ``images.yaml`` change to the followed branch and records
the promotion in the target's records. Otherwise it changes nothing and says what is missing
(which app, healthy since when). See docs/environments.md.

Exit codes: 0 promoted (or nothing to promote), 3 refused (the soak is not over, or an app
is not healthy on the tag), 1 an error (configuration, Git, Marathon).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from reconciler.cli import _output
from reconciler.shell import config, embedded, environments, promoter

REFUSED = 3


def _embedded_url(settings: config.Settings, *, names: list[str]) -> str | None:
    """The embedded dev cluster's address, when one of the environments runs on it (no
    Marathon of its own, ``RECONCILER_MARATHON_URL`` left at ``embedded``): the one the
    ``reconciler run`` with this state dir started, found as ``reconciler status`` does."""
    if not settings.embedded_marathon or all(
            environments.find(settings, n).marathon_url for n in names):
        return None
    url = embedded.embedded_url(settings.state_dir)
    if url is None:
        raise config.BadConfiguration(
            f"no Marathon URL: {', '.join(sorted(set(names)))} run on the embedded dev "
            f"cluster and none runs with state dir {settings.state_dir} (start `reconciler "
            f"run` with the same settings, or set {config.PREFIX}MARATHON_URL)")
    return url


@click.command()
@click.argument("image")
@click.option("--from", "source", default=None, metavar="ENVIRONMENT",
              help="The environment the tag comes from (default: the target's promote_from).")
@click.option("--to", "target", required=True, metavar="ENVIRONMENT",
              help="The environment whose images.yaml gets the tag.")
@click.option("--check", is_flag=True, help="Only judge: say whether the gate is open, write "
                                            "nothing.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="YAML file of settings, as for `reconciler run`.")
@_output.output_option()
def command(image: str, source: str | None, target: str, check: bool,
            config_file: Path | None, output: str) -> None:
    """Promote IMAGE's tag from one environment to another: only when that tag has been live
    and healthy on every app of the source that uses it for the target's soak time."""
    try:
        settings = config.load(config_file=config_file)
        target_env = environments.find(settings, target)
        names = [target] + [n for n in (source or target_env.promote_from,) if n]
        marathon_url = _embedded_url(settings, names=names)
        with tempfile.TemporaryDirectory(prefix="reconciler-promote-") as clone:
            opened = environments.open_for_promotion(settings, names=sorted(set(names)),
                                                     copy_dir=Path(clone) / "repo",
                                                     marathon_url=marathon_url)
            try:
                if check:
                    assessment = opened.promoter.assess(image, target=target, source=source)
                    shown, promoted, message = (assessment.as_json(), False,
                                                assessment.message)
                    decision = assessment.verdict.decision
                else:
                    result = opened.promoter.promote(image, target=target, source=source,
                                                     requested_by=config.operator())
                    shown, promoted, message = result.as_json(), result.promoted, result.message
                    decision = result.assessment.verdict.decision
            finally:
                opened.close()
    except (config.BadConfiguration, promoter.PromotionError) as e:
        click.echo(f"promote: {getattr(e, 'reason', e)}", err=True)
        sys.exit(1)
    if output != "text":
        _output.structured(shown, output)
    else:
        click.echo(message)
    if not promoted and decision.value not in ("promote", "nothing to promote"):
        sys.exit(REFUSED)
