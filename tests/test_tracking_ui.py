"""What the suite tells the MLflow UI (core/tracking.py): the experiment is a model-training one, and
addresses into the UI are well formed (issue 19, item 10). Without a browser: tags and URLs only."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from core.tracking import Tracker, compare_path, runs_path, ui_url


def test_new_and_earlier_experiments_are_marked_model_training(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns.db"
    t = Tracker(uri, "fresh")
    kind = "mlflow.experimentKind"
    assert t.client.get_experiment(t.experiment_id).tags[kind] == "custom_model_development"
    old = t.client.create_experiment("from-an-earlier-version")
    Tracker(uri, "from-an-earlier-version")
    assert t.client.get_experiment(old).tags[kind] == "custom_model_development"
    chosen = t.client.create_experiment("the-users-choice", tags={kind: "genai_development"})
    Tracker(uri, "the-users-choice")
    assert t.client.get_experiment(chosen).tags[kind] == "genai_development"


def test_compare_address_lists_the_runs_as_the_ui_reads_them():
    path = compare_path("7", ["a1", "b2"])
    route = urlsplit(path.removeprefix("#"))
    query = parse_qs(route.query)
    assert route.path == "/compare-runs" and json.loads(query["runs"][0]) == ["a1", "b2"]
    assert json.loads(query["experiments"][0]) == ["7"] and query["workflowType"] == ["machine_learning"]
    assert " " not in path and '"' not in path  # percent-encoded: a link that survives markdown and shells
    assert runs_path("7") == "#/experiments/7/runs?workflowType=machine_learning"


def test_full_address_is_the_server_or_the_default_ui():
    assert ui_url("http://host:5001/", "#/x") == "http://host:5001/#/x"
    assert ui_url("sqlite:///mlruns.db", "#/x") == "http://127.0.0.1:5000/#/x"
