"""Issue 9: ``groupconv check`` lists the custom-group routes; target names are case-insensitive."""

from __future__ import annotations

import json

import pytest

from groupconv.cli import _check_targets, main


def test_all_includes_builtin_groups_and_custom_routes():
    names = list(_check_targets(["all"]))
    assert "SO2" in names and "SE3" in names
    assert {"custom:generators", "custom:finite"} <= set(names)
    assert list(_check_targets([])) == names  # no target means all
    assert not any(n.startswith("custom:") for n in _check_targets(["groups"]))


@pytest.mark.parametrize("spelling", ["so2", "SO2", "So2"])
def test_group_names_are_case_insensitive(spelling):
    assert list(_check_targets([spelling])) == ["SO2"]


def test_custom_route_by_short_name():
    assert list(_check_targets(["CUSTOM:Finite"])) == ["custom:finite"]
    assert list(_check_targets(["finite"])) == ["custom:finite"]


def test_check_custom_routes_table_and_layer_rows(tmp_path, capsys):
    path = tmp_path / "check.json"
    assert main(["check", "custom:generators", "custom:finite", "--device", "cpu", "--examples", "3",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "custom:generators" in out and "lifting_equivariance" in out
    records = json.loads(path.read_text())
    layer = [r for r in records if r["property"] == "lifting_equivariance"]
    assert {r["group"] for r in layer} == {"custom:generators", "custom:finite"}
    for r in layer:
        assert r["status"] == "pass" and r["examples"] == 4  # identity and three quarter turns
        assert r["worst_error"] <= r["tolerance"]
    assert not any(r["status"] == "FAIL" for r in records)


def test_unknown_target_lists_the_custom_routes(capsys):
    assert main(["check", "NoSuchGroup"]) == 2
    err = capsys.readouterr().err
    assert "unknown check target 'NoSuchGroup'" in err and "custom:finite" in err
