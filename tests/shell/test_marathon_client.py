"""The Marathon client against real HTTP servers answering with Marathon's own examples.

Nothing of ours is mocked: a scripted ``http.server`` on a free port answers, and the tests
check both what the client returns and what reached the server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.shell import config, marathon
from tests.shell import servers
from tests.shell.servers import Reply, Stream

FAST = {"retries": 2, "backoff": 0.0, "timeout": 5.0}


def client_for(*urls: str, **overrides: Any) -> marathon.MarathonClient:
    options = {**FAST, **overrides}
    return marathon.MarathonClient(marathon.ClientSettings(urls=urls, **options))


def example(reference: Path, name: str) -> Any:
    return json.loads((reference / "examples" / name).read_text())


@pytest.fixture
def server() -> Any:
    with servers.serve() as scripted:
        yield scripted


# -- reading ---------------------------------------------------------------------------------


def test_list_apps_returns_marathon_apps_verbatim_with_embed_and_prefix(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    app_list = example(marathon_reference, "app_list.json")
    server.on("GET", "/v2/apps", Reply(body=app_list))
    client = client_for(server.url)

    apps = client.list_apps(prefix="/dirac", embed=("apps.tasks", "apps.lastTaskFailure"))

    assert apps == app_list["apps"]
    [seen] = server.requests("GET", "/v2/apps")
    assert seen.query == {"embed": ["apps.tasks", "apps.lastTaskFailure"], "id": ["/dirac"]}
    assert seen.headers["accept"] == "application/json"
    assert client.request_count == 1


def test_list_apps_of_the_root_group_sends_no_id_filter(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}))
    assert client_for(server.url).list_apps(prefix="/") == []
    assert server.requests()[0].query == {}


def test_get_app_quotes_each_segment_of_the_id(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    app = example(marathon_reference, "app.json")
    server.on("GET", "/v2/apps/dirac/web%20portal", Reply(body={"app": app}))
    assert client_for(server.url).get_app("/dirac/web portal/") == app


def test_deployments_tasks_queue_info_and_versions_parse_marathon_examples(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    deployments = example(marathon_reference, "deployments.json")
    tasks = example(marathon_reference, "app_tasks.json")
    queue = example(marathon_reference, "queue.json")
    info = example(marathon_reference, "info.json")
    app = example(marathon_reference, "app.json")
    server.on("GET", "/v2/deployments", Reply(body=deployments))
    server.on("GET", "/v2/apps/foo/tasks", Reply(body=tasks))
    server.on("GET", "/v2/queue", Reply(body=queue))
    server.on("GET", "/v2/info", Reply(body=info))
    server.on("GET", "/v2/apps/foo/versions", Reply(body={"versions": ["2015-09-29T15:59:51Z"]}))
    server.on("GET", "/v2/apps/foo/versions/2015-09-29T15%3A59%3A51Z", Reply(body=app))
    server.on("GET", "/ping", Reply(body=b"pong"))
    client = client_for(server.url)

    client.ping()
    assert client.list_deployments() == deployments
    assert client.list_tasks("/foo") == tasks["tasks"]
    assert client.queue() == queue
    assert client.info() == info
    assert client.list_versions("/foo") == ["2015-09-29T15:59:51Z"]
    assert client.get_app_version("/foo", "2015-09-29T15:59:51Z") == app
    assert client.request_count == 7


def test_a_non_json_answer_is_a_marathon_error(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/info", Reply(body=b"<html>proxy page</html>"))
    with pytest.raises(marathon.MarathonError, match="non-JSON"):
        client_for(server.url).info()


# -- changing --------------------------------------------------------------------------------


def test_create_answers_the_deployment_marathon_started(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    app = example(marathon_reference, "app.json")
    answer = {**app, "version": "2015-09-29T15:59:51.164Z",
              "deployments": [{"id": "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43"}]}
    server.on("POST", "/v2/apps", Reply(201, answer))

    ref = client_for(server.url).create_app(app)

    assert ref == marathon.DeploymentRef(deployment_id="5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43",
                                         version="2015-09-29T15:59:51.164Z")
    [seen] = server.requests("POST", "/v2/apps")
    assert seen.body == app
    assert seen.headers["content-type"] == "application/json"


def test_update_is_a_full_replacement_answering_deployment_id_and_version(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    result = example(marathon_reference, "deployments_result.json")
    server.on("PUT", "/v2/apps/dirac/fts", Reply(body=result))
    definition = {"id": "/dirac/fts", "instances": 2}

    ref = client_for(server.url).update_app("/dirac/fts", definition, force=True)

    assert ref.deployment_id == result["deploymentId"]
    assert ref.version == result["version"]
    [seen] = server.requests("PUT")
    assert seen.query == {"partialUpdate": ["false"], "force": ["true"]}
    assert seen.body == definition


def test_scale_sends_only_instances(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    server.on("PUT", "/v2/apps/dirac/fts",
              Reply(body=example(marathon_reference, "deployments_result.json")))
    client_for(server.url).scale_app("/dirac/fts", 5)
    [seen] = server.requests("PUT")
    assert seen.body == {"instances": 5}
    assert seen.query == {"force": ["false"]}


def test_delete_restart_and_cancel_answer_deployments(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    result = example(marathon_reference, "deployments_result.json")
    server.on("DELETE", "/v2/apps/dirac/fts", Reply(body=result))
    server.on("POST", "/v2/apps/dirac/fts/restart", Reply(body=result))
    server.on("DELETE", "/v2/deployments/97c136bf", Reply(body=result), Reply(202, b""))
    client = client_for(server.url)

    assert client.delete_app("/dirac/fts").deployment_id == result["deploymentId"]
    assert client.restart_app("/dirac/fts").version == result["version"]
    rollback = client.cancel_deployment("97c136bf")
    assert rollback is not None and rollback.deployment_id == result["deploymentId"]
    assert client.cancel_deployment("97c136bf", force=True) is None
    assert [s.query for s in server.requests("DELETE", "/v2/deployments/97c136bf")] == [
        {"force": ["false"]}, {"force": ["true"]}]


def test_an_answer_naming_no_deployment_is_an_error(server: servers.ScriptedMarathon) -> None:
    server.on("PUT", "/v2/apps/a", Reply(body={"version": "v"}))
    with pytest.raises(marathon.MarathonError, match="names no deployment"):
        client_for(server.url).scale_app("/a", 1)


# -- Marathon's errors, typed ----------------------------------------------------------------


def test_409_is_a_conflict_naming_the_deployments_that_lock_the_app(
    server: servers.ScriptedMarathon,
) -> None:
    message = ("App is locked by one or more deployments. Override with the option "
               "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.")
    server.on("PUT", "/v2/apps/dirac/fts", Reply(409, {
        "message": message, "deployments": [{"id": "d-1"}, {"id": "d-2"}]}))

    with pytest.raises(marathon.Conflict) as caught:
        client_for(server.url).update_app("/dirac/fts", {"id": "/dirac/fts"})

    assert caught.value.message == message
    assert caught.value.status == 409
    assert caught.value.deployment_ids == ["d-1", "d-2"]


def test_409_on_create_of_an_existing_app_is_a_conflict_without_deployments(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("POST", "/v2/apps", Reply(409, {
        "message": "An app with id [/existing_app] already exists."}))
    with pytest.raises(marathon.Conflict, match="already exists") as caught:
        client_for(server.url).create_app({"id": "/existing_app"})
    assert caught.value.deployment_ids == []


def test_422_is_unprocessable_with_marathons_paths_and_errors(
    server: servers.ScriptedMarathon,
) -> None:
    details = [{"path": "/cpus", "errors": ["error.min"]},
               {"path": "/id", "errors": ["must fully match regular expression"]}]
    server.on("POST", "/v2/apps", Reply(422, {"message": "Object is not valid",
                                              "details": details}))
    with pytest.raises(marathon.Unprocessable, match="Object is not valid") as caught:
        client_for(server.url).create_app({"id": "/A", "cpus": -1})
    assert caught.value.details == details
    assert caught.value.status == 422


def test_400_invalid_json_is_unprocessable_too(server: servers.ScriptedMarathon) -> None:
    details = [{"path": "/instances", "errors": ["error.expected.jsnumber"]}]
    server.on("POST", "/v2/apps", Reply(400, {"message": "Invalid JSON", "details": details}))
    with pytest.raises(marathon.Unprocessable, match="Invalid JSON") as caught:
        client_for(server.url).create_app({"id": "/a", "instances": "two"})
    assert caught.value.details == details


def test_400_for_a_body_that_does_not_parse_keeps_the_parsers_text(
    server: servers.ScriptedMarathon,
) -> None:
    # Marathon's MarathonExceptionMapper answers a Jackson parse error with details as a
    # string, not a list of paths: it must not become a list of characters.
    server.on("POST", "/v2/apps", Reply(400, {"message": "Invalid JSON",
                                              "details": "Unexpected end-of-input"}))
    with pytest.raises(marathon.Unprocessable, match="Invalid JSON: Unexpected") as caught:
        client_for(server.url).create_app({"id": "/a"})
    assert caught.value.details == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_unauthorized_with_marathons_message(
    server: servers.ScriptedMarathon, status: int
) -> None:
    server.on("GET", "/v2/apps", Reply(status, {"message": "Invalid username or password."}))
    with pytest.raises(marathon.Unauthorized, match="Invalid username or password") as caught:
        client_for(server.url).list_apps()
    assert caught.value.status == status


def test_404_is_not_found_with_marathons_message(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps/missing", Reply(404, {"message": "App '/missing' does not exist"}))
    with pytest.raises(marathon.NotFound, match="App '/missing' does not exist"):
        client_for(server.url).get_app("/missing")


def test_an_error_without_a_json_body_still_says_the_status(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("GET", "/v2/apps", Reply(418, b"teapot"))
    with pytest.raises(marathon.MarathonError) as caught:
        client_for(server.url).list_apps()
    assert caught.value.status == 418
    assert type(caught.value) is marathon.MarathonError


# -- failover and retries --------------------------------------------------------------------


def test_a_dead_url_fails_over_to_a_live_one_which_is_then_tried_first(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}))
    client = client_for(servers.closed_port_url(), server.url, retries=0)

    assert client.list_apps() == []
    assert client.request_count == 2
    assert client.list_apps() == []
    assert client.request_count == 3, "the live URL should be remembered and tried first"


def test_a_refused_connection_fails_over_at_once_instead_of_retrying_the_dead_url(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}))
    client = client_for(servers.closed_port_url(), server.url, retries=3, backoff=30.0)
    assert client.list_apps() == []
    assert client.request_count == 2


def test_a_single_url_retries_a_refused_connection(server: servers.ScriptedMarathon) -> None:
    client = client_for(servers.closed_port_url(), retries=2)
    with pytest.raises(marathon.MarathonUnavailable, match="Connection refused"):
        client.list_apps()
    assert client.request_count == 3


def test_a_non_leader_answering_503_fails_over_to_the_next_url(
    server: servers.ScriptedMarathon,
) -> None:
    with servers.serve() as standby:
        standby.on("GET", "/v2/apps", Reply(503, {"message": "Could not determine the leader"}))
        server.on("GET", "/v2/apps", Reply(body={"apps": [{"id": "/a"}]}))
        client = client_for(standby.url, server.url, retries=0)

        assert client.list_apps() == [{"id": "/a"}]
        assert len(standby.requests()) == 1
        assert len(server.requests()) == 1


def test_every_url_down_is_marathon_unavailable(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(502, {"message": "bad gateway"}))
    client = client_for(servers.closed_port_url(), server.url, retries=0)
    with pytest.raises(marathon.MarathonUnavailable, match="tried 2 URL"):
        client.list_apps()


def test_get_is_retried_on_503_on_the_same_url(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(503, {"message": "busy"}), Reply(body={"apps": []}))
    client = client_for(server.url, retries=2)
    assert client.list_apps() == []
    assert len(server.requests("GET", "/v2/apps")) == 2
    assert client.request_count == 2, "a retry is an HTTP request too"


def test_post_is_not_retried_on_503(server: servers.ScriptedMarathon) -> None:
    server.on("POST", "/v2/apps", Reply(503, {"message": "busy"}),
              Reply(201, {"version": "v", "deployments": [{"id": "d"}]}))
    with pytest.raises(marathon.MarathonUnavailable, match="busy"):
        client_for(server.url, retries=3).create_app({"id": "/a"})
    assert len(server.requests("POST")) == 1


def test_post_is_neither_retried_nor_failed_over_on_a_read_timeout(
    server: servers.ScriptedMarathon,
) -> None:
    """Marathon may have applied a POST that timed out: sending it again could double it."""
    with servers.serve() as other:
        other.on("POST", "/v2/apps", Reply(201, {"version": "v", "deployments": [{"id": "d"}]}))
        server.on("POST", "/v2/apps", Reply(201, {"version": "v", "deployments": [{"id": "d"}]},
                                            delay=2.0))
        client = client_for(server.url, other.url, retries=3, timeout=0.3)
        with pytest.raises(marathon.MarathonUnavailable, match="timed out"):
            client.create_app({"id": "/a"})
        assert len(server.requests("POST")) == 1
        assert other.requests() == []


def test_get_is_retried_on_a_read_timeout(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}, delay=2.0), Reply(body={"apps": []}))
    assert client_for(server.url, retries=1, timeout=0.3).list_apps() == []
    assert len(server.requests("GET")) == 2


# -- authentication --------------------------------------------------------------------------


def test_basic_auth_is_sent(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}))
    client_for(server.url, username="ops", password="s3cret").list_apps()
    # base64("ops:s3cret")
    assert server.requests()[0].headers["authorization"] == "Basic b3BzOnMzY3JldA=="


def test_a_token_is_sent_dcos_style_and_wins_over_basic_auth(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("GET", "/v2/apps", Reply(body={"apps": []}))
    client_for(server.url, token="eyJ0", username="ops", password="s3cret").list_apps()
    assert server.requests()[0].headers["authorization"] == "token=eyJ0"


def test_credentials_never_appear_in_errors_or_settings(server: servers.ScriptedMarathon) -> None:
    server.on("GET", "/v2/apps", Reply(401, {"message": "denied"}))
    settings = marathon.ClientSettings(urls=(servers.closed_port_url(), server.url),
                                       username="ops", password="pa55word", token="t0ken",
                                       retries=0)
    with pytest.raises(marathon.Unauthorized) as caught:
        marathon.MarathonClient(settings).list_apps()
    dead = marathon.MarathonClient(marathon.ClientSettings(
        urls=(servers.closed_port_url(),), username="ops", password="pa55word", retries=0))
    with pytest.raises(marathon.MarathonUnavailable) as unavailable:
        dead.list_apps()
    for text in (str(caught.value), repr(caught.value), str(unavailable.value), repr(settings)):
        assert "pa55word" not in text
        assert "t0ken" not in text


def test_environment_settings_read_urls_credentials_and_files(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-file\n")
    (tmp_path / "token").write_text("tok-file\n")
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("pem\n")
    settings = config.load({
        "RECONCILER_MARATHON_URL": "https://m1:8443/, https://m2:8443",
        "RECONCILER_MARATHON_USERNAME": "ops",
        "RECONCILER_MARATHON_PASSWORD_FILE": str(tmp_path / "password"),
        "RECONCILER_MARATHON_TOKEN_FILE": str(tmp_path / "token"),
        "RECONCILER_MARATHON_CA_BUNDLE": str(tmp_path / "ca.pem"),
        "RECONCILER_MARATHON_CLIENT_CERT": str(tmp_path / "client.pem"),
        "RECONCILER_MARATHON_CLIENT_KEY": str(tmp_path / "client.key"),
        "RECONCILER_MARATHON_TIMEOUT": "2.5",
    }).client_settings()
    assert settings.urls == ("https://m1:8443", "https://m2:8443")
    assert (settings.username, settings.password, settings.token) == ("ops", "from-file",
                                                                      "tok-file")
    assert (settings.ca_bundle, settings.client_cert, settings.client_key) == (
        str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
    assert settings.timeout == 2.5


def test_environment_settings_prefer_the_explicit_urls_and_the_variable_over_its_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "password").write_text("from-file")
    settings = config.load(
        {"RECONCILER_MARATHON_URL": "http://ignored", "RECONCILER_MARATHON_PASSWORD": "direct",
         "RECONCILER_MARATHON_PASSWORD_FILE": str(tmp_path / "password")},
    ).client_settings(urls="http://a:8080,http://b:8080")
    assert settings.urls == ("http://a:8080", "http://b:8080")
    assert settings.password == "direct"
    assert settings.token is None


@pytest.mark.parametrize("environ, problem", [
    ({}, "no Marathon URL"),
    ({"RECONCILER_MARATHON_URL": " , "}, "no Marathon URL"),
    ({"RECONCILER_MARATHON_URL": "http://m", "RECONCILER_MARATHON_TIMEOUT": "soon"},
     "RECONCILER_MARATHON_TIMEOUT"),
    ({"RECONCILER_MARATHON_URL": "http://m",
      "RECONCILER_MARATHON_TOKEN_FILE": "/nonexistent/token"}, "/nonexistent/token"),
])
def test_environment_settings_refuse_bad_values_clearly(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(config.BadConfiguration, match=problem):
        config.load(environ).client_settings()


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> servers.TlsFiles:
    return servers.make_tls_files(tmp_path_factory.mktemp("tls"))


def test_tls_with_a_ca_bundle_and_a_client_certificate(tls_files: servers.TlsFiles) -> None:
    with servers.serve(tls=tls_files) as server:
        server.on("GET", "/v2/apps", Reply(body={"apps": [{"id": "/a"}]}))
        client = client_for(server.url, ca_bundle=str(tls_files.ca),
                            client_cert=str(tls_files.client_cert),
                            client_key=str(tls_files.client_key))
        assert client.list_apps() == [{"id": "/a"}]


def test_tls_without_the_client_certificate_is_refused(tls_files: servers.TlsFiles) -> None:
    with servers.serve(tls=tls_files) as server:
        server.on("GET", "/v2/apps", Reply(body={"apps": []}))
        client = client_for(server.url, ca_bundle=str(tls_files.ca), retries=0)
        with pytest.raises(marathon.MarathonUnavailable):
            client.list_apps()
        assert server.requests() == []


def test_tls_against_a_server_our_ca_did_not_sign_is_refused(
    tls_files: servers.TlsFiles,
) -> None:
    with servers.serve(tls=tls_files, require_client_cert=False) as server:
        server.on("GET", "/v2/apps", Reply(body={"apps": []}))
        client = client_for(server.url, ca_bundle=str(tls_files.other_ca), retries=0)
        with pytest.raises(marathon.MarathonUnavailable, match="certificate"):
            client.list_apps()
        assert server.requests() == []


def test_the_ca_bundle_setting_wins_over_requests_environment_variables(
    tls_files: servers.TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's CA: ours must not be overridden."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.other_ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_files.other_ca))
    with servers.serve(tls=tls_files, require_client_cert=False) as server:
        server.on("GET", "/v2/apps", Reply(body={"apps": []}))
        assert client_for(server.url, ca_bundle=str(tls_files.ca)).list_apps() == []


# -- the event stream ------------------------------------------------------------------------


def sse_parts(marathon_reference: Path) -> tuple[bytes, ...]:
    """events.txt split into one write per event, as Marathon flushes them."""
    text = (marathon_reference / "examples" / "events.txt").read_text()
    blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    return tuple((block + "\n\n").encode() for block in blocks)


def expected_events(marathon_reference: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in (marathon_reference / "examples" / "events.txt").read_text().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.strip().splitlines())
        if lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_events_parse_marathons_event_stream(
    server: servers.ScriptedMarathon, marathon_reference: Path, chunked: bool
) -> None:
    server.on("GET", "/v2/events", Stream(parts=sse_parts(marathon_reference), chunked=chunked))
    events = list(client_for(server.url).events(event_types=("status_update_event",
                                                             "event_stream_attached")))
    assert [(e.event_type, e.data) for e in events] == expected_events(marathon_reference)
    [seen] = server.requests("GET", "/v2/events")
    assert seen.query == {"event_type": ["status_update_event", "event_stream_attached"]}
    assert seen.headers["accept"] == "text/event-stream"


def test_events_handle_crlf_comments_and_multiline_data(server: servers.ScriptedMarathon) -> None:
    parts = (b": keep-alive\r\n\r\n", b"event: deployment_success\r\ndata: {\"id\":",
             b" \"d-1\",\r\ndata: \"eventType\": \"deployment_success\"}\r\n\r\n",
             b"data: {\"eventType\": \"api_post_event\", \"uri\": \"/v2/apps/a\"}\n\n")
    server.on("GET", "/v2/events", Stream(parts=parts))
    events = list(client_for(server.url).events())
    assert events == [
        marathon.Event("deployment_success", {"id": "d-1", "eventType": "deployment_success"}),
        marathon.Event("api_post_event", {"eventType": "api_post_event", "uri": "/v2/apps/a"}),
    ]


@pytest.mark.parametrize(("part", "problem"), [
    (b"event: deployment_success\ndata: {\"id\": \xff}\n\n", "UTF-8"),
    (b"event: deployment_success\ndata: {\"id\": \n\n", "not JSON"),
])
def test_a_garbled_event_is_a_marathon_error(
    server: servers.ScriptedMarathon, part: bytes, problem: str
) -> None:
    server.on("GET", "/v2/events", Stream(parts=(part,)))
    with pytest.raises(marathon.MarathonError, match=problem):
        list(client_for(server.url).events())


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_an_event_is_delivered_while_the_stream_stays_open(
    server: servers.ScriptedMarathon, marathon_reference: Path, chunked: bool
) -> None:
    """Small events must not wait in a buffer for more bytes (Marathon may stay quiet)."""
    server.on("GET", "/v2/events", Stream(parts=sse_parts(marathon_reference)[:1],
                                          chunked=chunked, hold_open=30.0))
    stream = client_for(server.url).events(idle_timeout=10.0)
    started = time.monotonic()
    first = next(stream)
    assert first.event_type == "event_stream_attached"
    assert time.monotonic() - started < 5.0, "the event waited for the idle timeout"
    stream.close()


def test_an_idle_stream_ends_with_marathon_unavailable_after_the_idle_timeout(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    server.on("GET", "/v2/events", Stream(parts=sse_parts(marathon_reference)[:1],
                                          hold_open=30.0))
    stream = client_for(server.url).events(idle_timeout=0.3)
    assert next(stream).event_type == "event_stream_attached"
    with pytest.raises(marathon.MarathonUnavailable, match="event stream"):
        next(stream)


def test_closing_the_event_iterator_closes_the_connection(
    server: servers.ScriptedMarathon, marathon_reference: Path
) -> None:
    server.on("GET", "/v2/events", Stream(parts=sse_parts(marathon_reference)[:1],
                                          hold_open=30.0, keepalive=0.05))
    stream = client_for(server.url).events(idle_timeout=5.0)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 5.0
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.disconnects == ["/v2/events"]


def test_an_event_stream_refused_by_marathon_is_a_typed_error(
    server: servers.ScriptedMarathon,
) -> None:
    server.on("GET", "/v2/events", Reply(403, {"message": "Not Authorized"}))
    with pytest.raises(marathon.Unauthorized, match="Not Authorized"):
        next(client_for(server.url).events())


# -- the fence of a replica that may lose leadership ---------------------------------------


def test_the_fence_is_asked_before_every_write_attempt_and_its_headers_go_with_it(
    server: servers.ScriptedMarathon,
) -> None:
    """A retry after a 503 asks again: leadership lost during the backoff sends nothing
    more, reads are never fenced."""
    answers = iter([{"X-Reconciler-Term": "3"}])

    def fence() -> dict[str, str]:
        try:
            return next(answers)
        except StopIteration:
            raise marathon.Fenced("not the leader (b leads at http://b:8000)") from None

    server.on("PUT", "/v2/apps/dirac/web", Reply(503, {"message": "leader election"}),
              Reply(200, {"deploymentId": "d-1", "version": "v"}))
    server.on("GET", "/v2/apps", Reply(200, {"apps": []}))
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(server.url,), backoff=0.01),
                                     fence=fence)
    with pytest.raises(marathon.Fenced, match="b leads"):
        client.update_app("/dirac/web", {"id": "/dirac/web"})
    (sent,) = server.requests("PUT")
    assert sent.headers["x-reconciler-term"] == "3"
    assert client.list_apps() == []
