"""The web side of reconciler: on-call dashboard, drift report, JSON API and webhooks."""
