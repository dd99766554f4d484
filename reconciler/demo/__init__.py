"""The guided demo (``reconciler demo``): :mod:`stage` sets it up, :mod:`story` tells it.

Beside the CLI, not inside the shell: it is a product script that drives the controller from
outside, as a person would.
"""
