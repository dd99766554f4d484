"""reconciler: a GitOps controller that keeps Mesos Marathon equal to a Git repository.

Layout (the pipeline reads top to bottom):

- ``reconciler.core``: pure logic, no I/O. Load desired state from files, validate it,
  resolve images, normalize desired and live apps, pair and diff them, plan, assess health.
- ``reconciler.shell``: the thin I/O shell. Git source, Marathon client, record store,
  applier, engine (one reconcile), scheduler, web server, telemetry, configuration.
- ``reconciler.devcluster``: an embedded Marathon-compatible dev cluster that really runs
  tasks as local processes. It shares no code with the controller on purpose.
- ``reconciler.cli``: the ``reconciler`` command.
"""

__version__ = "0.1.0"
