"""The thin shell around the core: every module here owns one kind of I/O.

``marathon`` is the only module that imports ``requests``; ``gitsource`` the only one that
imports ``git``; ``records`` the only package that touches the database; ``telemetry`` holds
all global state (logging, metrics, Sentry).
"""
