"""On-call HTML: the Jinja2 owner module, and the self-contained drift report.

The report is one HTML file with its CSS inline and no external reference (no script, font
or image from anywhere), so that it can be attached to an incident, mailed or opened offline.
The dashboard renders its pages with :func:`environment` and shares the report's macros.

``render_drift_report(drifts, generated_at=..., desired=store_last_applied_definitions)``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from reconciler.core import model
from reconciler.core import since as since_filter
from reconciler.shell import readmodel
from reconciler.shell import records as recording

_environment: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The one Jinja2 environment (autoescaped; templates from the package)."""
    global _environment  # noqa: PLW0603 - built once, read-only afterwards
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.PackageLoader("reconciler.web", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        _environment.filters["ago"] = lambda when, now: since_filter.ago(when, now=now)
    return _environment


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_drift_report(
    drifts: Sequence[recording.Drift], *, generated_at: str,
    desired: Mapping[model.AppId, model.JSON] | None = None, matching: int | None = None,
) -> str:
    """A standalone HTML report: open drift first, each with its field diff and attribution.

    ``desired`` maps app ids to the definition last applied from Git (the old value of each
    field); without it the report shows the live values only. ``matching``: how many drift
    records matched, when ``drifts`` holds only the first of them.
    """
    desired = desired or {}
    ordered = sorted(drifts, key=lambda d: d.status == "resolved")
    report_views = [readmodel.DriftView(drift=d,
                                        lines=readmodel.drift_lines(d, desired.get(d.app_id)))
                    for d in ordered]
    open_count = sum(1 for v in report_views if v.is_open)
    return render("report.html", views=report_views, generated_at=generated_at,
                  open_count=open_count, resolved_count=len(report_views) - open_count,
                  matching=matching)


def store_report(store: recording.RecordStore, *, generated_at: str,
                 drifts: Sequence[recording.Drift] | None = None,
                 matching: int | None = None) -> str:
    """The drift report of ``store`` (all drift, or ``drifts``), with desired values."""
    drifts = store.drifts() if drifts is None else drifts
    applied = store.last_applied(only={d.app_id for d in drifts})
    return render_drift_report(drifts, generated_at=generated_at, matching=matching,
                               desired={a: last.definition for a, last in applied.items()})
