"""``reconciler run`` as a real process against hostile requests: a 1 GiB body streamed to
the GitHub webhook is refused (413) while the server's resident memory stays small."""

from __future__ import annotations

from pathlib import Path

from tests.controller.stack import running
from tests.support import streaming

MAX_RSS_MB = 300
BODY = 1024 ** 3  # 1 GiB, as the attack that peaked at 1.9 GB resident


def resident_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (``VmRSS``) or at its peak so far (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_a_huge_streamed_webhook_body_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    with running(tmp_path, poll_interval=60) as controller:
        pid = controller.process.pid
        before = resident_mb(pid)
        signed = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
        streamed = streaming.stream_post(f"{controller.url}/webhooks/github", total=BODY,
                                         headers=signed, chunk_size=1024 * 1024)
        declared = streaming.stream_post(f"{controller.url}/webhooks/github", total=BODY,
                                         headers=signed, declare_length=True)
        unsigned = streaming.stream_post(f"{controller.url}/webhooks/github", total=BODY,
                                         chunk_size=1024 * 1024)
        after, peak = resident_mb(pid), resident_mb(pid, "VmHWM")
        assert controller.process.poll() is None, controller.explain()
        healthy = controller.get("/healthz")
    assert (streamed.status, declared.status, unsigned.status) == (413, 413, 401), (
        streamed.head, declared.head, unsigned.head)
    assert streamed.sent < BODY and declared.sent < BODY and unsigned.sent < BODY
    assert peak < MAX_RSS_MB, (
        f"resident {before:.0f} MB before, {after:.0f} MB after, {peak:.0f} MB at the peak")
    assert healthy == {"alive": True}
