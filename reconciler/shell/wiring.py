"""Builds the controller of ``reconciler run`` from settings: the Git source (with the trusted
keyring when commits must be signed), the Marathon client (fenced by leadership under
ZooKeeper), the record store and the notifier. Called once per environment at start."""

from __future__ import annotations

from reconciler.shell import (
    config,
    gitsource,
    leadership,
    marathon,
    notify,
    records,
    signatures,
    telemetry,
)
from reconciler.shell import controller as controlling


def build(settings: config.Settings, *, marathon_url: str | None = None,
          environment: str | None = None) -> controlling.Controller:
    """A controller wired from settings (source, client, store, notifier); not started.

    ``marathon_url`` replaces ``settings.marathon_url`` (the embedded dev cluster's address).
    ``environment`` names the controller's environment (several: its notices and metrics).
    Raises :class:`signatures.SignatureError` when the trusted keys file holds no usable key
    (said once, at start, not at every poll).
    """
    keyring = signatures.Keyring(
        home=settings.state_dir / "gnupg" / "trusted",
        trusted_keys_file=settings.trusted_keys_file,
        allowed_signers_file=settings.allowed_signers_file) if settings.verify_signatures else None
    if keyring is not None:
        keyring.environment()
    source = gitsource.open_source(
        settings.repo_url, ref=settings.repo_ref, path=settings.repo_path,
        cache_dir=settings.state_dir / "git", token=settings.git_token,
        ssh_key_file=settings.git_ssh_key_file,
        known_hosts_file=settings.git_known_hosts_file, keyring=keyring)
    leader = leadership.from_settings(settings) if settings.zk_url else None
    client = marathon.MarathonClient(settings.client_settings(urls=marathon_url),
                                     fence=leader.fence if leader else None)
    # A long-running process: migrations (Alembic, ~10-20 MB resident) run in a child.
    store = records.open_store(settings.state_dir, url=settings.database_url,
                               migrate_in_child=True)
    webhook = settings.notify_webhook_url
    notifier = notify.Notifier(
        records=store, webhook_url=webhook,
        capture=telemetry.capture_message if settings.sentry_dsn else None,
        secrets=settings.secrets, dashboard_url=settings.public_url, environment=environment,
    ) if (webhook or settings.sentry_dsn) else None
    return controlling.Controller(settings=settings, source=source, client=client, store=store,
                                  notifier=notifier, leader=leader, environment=environment)
