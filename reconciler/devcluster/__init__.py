"""An embedded Marathon-compatible dev cluster that really runs tasks as local processes.

It shares no code with the controller (``reconciler.core``/``reconciler.shell``), so that it
can never hide a controller bug by agreeing with it.
"""
