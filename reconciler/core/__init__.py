"""The pure core: computes, never acts. No network, git, database, clock or environment here.

Each module is one step of a reconcile: ``load`` -> ``validate`` -> ``images`` ->
``normalize`` -> ``diff`` -> ``plan``; ``health`` assesses, ``redact`` masks secrets,
``model`` holds the shared vocabulary.
"""
