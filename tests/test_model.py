"""The shared vocabulary: settings lookups by app-id prefix."""

from reconciler.core import model


def test_longest_prefix_decides_the_drift_policy() -> None:
    settings = model.RepoSettings(
        drift_policies={
            "/dirac": model.DriftPolicy.REPORT,
            "/dirac/web": model.DriftPolicy.CORRECT,
        }
    )
    assert settings.drift_policy_for("/dirac/web/portal") is model.DriftPolicy.CORRECT
    assert settings.drift_policy_for("/dirac/fts") is model.DriftPolicy.REPORT
    assert settings.drift_policy_for("/other") is model.DriftPolicy.CORRECT


def test_prefix_matches_whole_path_segments_only() -> None:
    assert model.is_under("/dirac/fts", "/dirac")
    assert not model.is_under("/diracx/fts", "/dirac")
    assert model.is_under("/anything", "/")


def test_problem_prints_path_and_line() -> None:
    assert str(model.Problem("a/b.yaml", 3, "bad")) == "a/b.yaml:3: bad"
    assert str(model.Problem("a/b.yaml", None, "bad")) == "a/b.yaml: bad"
