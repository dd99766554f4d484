"""What the controller says of itself: its status (``/api/v1/status``) and why it is not
ready (``/readyz``). Plain data and one pure function; the controller fills them in, or,
on a follower (which runs nothing), :func:`follower_status` from the shared records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from reconciler.shell import records


@dataclass(frozen=True)
class Status:
    """What the controller knows now, for ``/api/v1/status`` and ``/readyz``."""

    revision: str | None
    """The revision last reconciled without error."""
    seen_revision: str | None
    """The newest revision the source answered with."""
    ref: str
    source: str
    last_poll_at: str | None
    last_sync_at: str | None
    last_outcome: str | None
    git_error: str | None
    marathon_error: str | None
    invalid: str | None
    """Why the newest revision cannot be applied (validation problems), if so."""
    leadership: Mapping[str, Any] | None = None
    """Who leads and this replica's role (None: a single replica, no ZooKeeper)."""
    checks: int | None = 0
    """Polls, drift checks and syncs since the start that found nothing to change: counted
    here (and in ``reconciler_checks_total``), never recorded as runs. None on a follower:
    only the leader checks, and counts in its memory."""
    last_checked_at: str | None = None
    event_stream_error: str | None = None
    """Why Marathon's event stream is not followed (drift is then found by polling only)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "lastSyncedRevision": self.revision,
            "seenRevision": self.seen_revision, "ref": self.ref, "source": self.source,
            "lastPollAt": self.last_poll_at, "lastSyncAt": self.last_sync_at,
            "lastOutcome": self.last_outcome, "gitError": self.git_error,
            "marathonError": self.marathon_error, "invalid": self.invalid,
            "checks": self.checks, "lastCheckedAt": self.last_checked_at,
            **({"leadership": dict(self.leadership)} if self.leadership is not None else {}),
            "liveUpdates": "events" if self.event_stream_error is None
            else f"polling: {self.event_stream_error}",
        }


def follower_status(store: records.RecordStore, *, ref: str, source: str,
                    leadership: Mapping[str, Any], event_stream_error: str | None
                    ) -> Status:
    """A follower's status: the leader's last revision, outcome and sync time, read from
    the shared records (the last runs recorded), and who leads (``leadership``)."""
    synced = store.last_run(applied_git=True)
    last = store.last_run()
    return Status(
        revision=synced.revision if synced else None, seen_revision=store.newest_revision(),
        ref=ref, source=source, last_poll_at=None,
        last_sync_at=last.finished_at if last else None,
        last_outcome=last.outcome if last else None, git_error=None, marathon_error=None,
        invalid=None, leadership=leadership, checks=None, event_stream_error=event_stream_error)


class Leadership(Protocol):
    """What readiness needs of :class:`reconciler.shell.leadership.View`."""

    @property
    def role(self) -> str: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def leader(self) -> str | None: ...


def not_ready_because(*, synced: str | None, invalid: tuple[str, str] | None,
                      git_error: str | None, marathon_error: str | None,
                      records_error: str | None, registry_error: str | None = None,
                      leadership: Leadership | None = None
                      ) -> list[str]:
    """Why the controller is not ready, empty when it is: no revision reconciled yet, the
    newest commit failed to load, Git or Marathon failed at the last contact (Marathon
    answering nonsense included), the records cannot be written or belong to another
    Marathon, the registry watch failed at its last check (a registry down or refusing
    access, the bump commit refused). A follower (it polls nothing) is ready while ZooKeeper
    and the records answer; a leader cut off from ZooKeeper is not, and says why."""
    if leadership is not None and str(leadership.role) != "leader":
        return [r for r in (
            f"zookeeper: {leadership.problem}" if leadership.problem else None,
            f"records: {records_error}" if records_error else None) if r]
    reasons = [
        "no revision reconciled yet" if synced is None else None,
        (f"the newest commit {invalid[0][:12]} failed to load: "
         f"{invalid[1].splitlines()[0] if invalid[1] else ''}") if invalid else None,
        f"git: {git_error}" if git_error else None,
        f"marathon: {marathon_error}" if marathon_error else None,
        f"records: {records_error}" if records_error else None,
        f"registry watch: {registry_error}" if registry_error else None,
    ]
    return [r for r in reasons if r]
