"""Recovery after a crash: what became of the writes a dead predecessor had in flight.

Runs first in every reconcile (the engine's ``resume`` step), before anything is sent. The
record store holds an intent for every Marathon write, recorded before its request left
(:mod:`reconciler.shell.journal`); an intent still open belongs to a process that died
between recording it and recording Marathon's answer. For each one Marathon is asked:

    a deployment of the app runs    adopted: recorded as the predecessor's change, with the
                                    intent's time, so the engine waits on it (and rolls it
                                    back if it fails or its deadline, counted from the
                                    intent, has passed) instead of sending it again
    the app equals the intent       applied: Marathon finished it while nobody watched
    neither                         never sent

Runs a crash left without an outcome become ``interrupted``. Nothing here sends a write.
"""

from __future__ import annotations

import logging
from typing import Any

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.shell import marathon, records

log = logging.getLogger(__name__)


def recover(client: marathon.MarathonClient, store: records.RecordStore, *,
            run_id: int) -> list[str]:
    """Resolve the open intents and unfinished runs before ``run_id``; returns what was done.

    Raises :class:`marathon.MarathonError` when Marathon cannot be asked (the intents stay
    open for the next run).
    """
    notes: list[str] = []
    interrupted = store.interrupt_runs(before_run=run_id, outcome=str(model.Outcome.INTERRUPTED))
    notes += [f"run {r} interrupted" for r in interrupted]
    intents = store.open_intents(before_run=run_id)
    if not intents:
        return notes
    claimed = {c.deployment_id for c in store.pending_changes()}
    deployments = client.list_deployments()
    for intent in intents:
        found = [d for d in deployments
                 if intent.app_id in (d.get("affectedApps") or ()) and d.get("id") not in claimed]
        if found:
            deployment = found[0]
            claimed.add(deployment["id"])
            change_id = store.record_deployment(
                run_id=intent.run_id, app_id=intent.app_id, action=intent.action,
                revision=intent.revision, deployment_id=str(deployment["id"]),
                version=deployment.get("version"), previous_version=intent.previous_version,
                purpose=intent.purpose, patch=[], deadline_seconds=intent.deadline_seconds,
                started_at=intent.at)
            store.resolve_intent(intent.intent_id, resolution=records.Resolution.ADOPTED,
                                 change_id=change_id)
            notes.append(f"{intent.app_id}: adopted deployment {deployment['id']}")
        elif _applied(client, store, intent):
            change_id = store.record_deployment(
                run_id=intent.run_id, app_id=intent.app_id, action=intent.action,
                revision=intent.revision, deployment_id=None, version=None,
                previous_version=intent.previous_version, purpose=intent.purpose, patch=[],
                deadline_seconds=intent.deadline_seconds, started_at=intent.at)
            store.finish_change(change_id, outcome=str(model.Outcome.SUCCEEDED),
                                reason="applied by Marathon while no controller watched "
                                       "(found after a crash)")
            store.resolve_intent(intent.intent_id, resolution=records.Resolution.APPLIED,
                                 change_id=change_id)
            notes.append(f"{intent.app_id}: {intent.action} found applied")
        else:
            store.resolve_intent(intent.intent_id, resolution=records.Resolution.NEVER_SENT)
            notes.append(f"{intent.app_id}: {intent.action} never reached Marathon")
    for note in notes:
        log.warning("recovered after a crash: %s", note)
    return notes


def _applied(client: marathon.MarathonClient, store: records.RecordStore,
             intent: records.Intent) -> bool:
    """Whether Marathon's app is what the intent asked for (a change's intent only)."""
    if intent.purpose != model.Purpose.CHANGE:
        return False
    live: dict[str, Any] | None
    try:
        live = client.get_app(intent.app_id)
    except marathon.NotFound:
        live = None
    if intent.action == model.Action.DELETE:
        return live is None
    definition = store.desired_definition(revision=intent.revision, app_id=intent.app_id)
    if live is None or definition is None \
            or records.definition_digest(definition) != intent.digest:
        return False
    desired = model.DesiredState(
        revision=intent.revision,
        apps={intent.app_id: model.DesiredApp(app_id=intent.app_id, definition=definition,
                                              source_path=f"intent:{intent.intent_id}")},
        images={}, settings=model.RepoSettings(managed_prefixes=(intent.app_id,)))
    return all(d.action is model.Action.NOOP for d in diffing.diff_apps(desired, [live])
               if d.app_id == intent.app_id)
