"""`shelfwise keys ...`: keys made with a name, roles and a tenant, shown once, listed without
the key, removed by name; the service reads them (a key's name is who acts with it); clear
refusals for a taken name, an unknown role, an unknown key and a broken file."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from shelfwise.cli import app
from shelfwise.serve.auth import KeyRing

runner = CliRunner()


def keys(folder: Path, *args: str) -> Any:
    return runner.invoke(app, ["keys", *args, "-w", str(folder)])


def last_json(result: Any) -> Any:
    return json.loads(result.stdout.strip().splitlines()[-1])


def said(result: Any) -> str:
    return " ".join(result.stderr.split())


def test_keys_are_made_listed_and_removed_by_name(tmp_path: Path) -> None:
    made = keys(tmp_path, "add", "ana", "--role", "reviewer")
    assert made.exit_code == 0, made.output
    ana = last_json(made)
    assert (ana["name"], ana["tenant"], ana["roles"]) == ("ana", "default", ["reviewer"])
    bo = last_json(keys(tmp_path, "add", "bo", "--role", "writer", "--role", "reader"))
    assert bo["roles"] == ["reader", "writer"]
    path = tmp_path / "api_keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the keys are the owner's alone
    ring = KeyRing.from_file(path)  # as the service reads them
    principal = ring.principal(ana["key"])
    assert principal is not None
    assert (principal.name, principal.tenant, principal.may("reviewer")) == ("ana", "default", True)
    listed = keys(tmp_path, "list")
    assert last_json(listed) == [
        {"name": "ana", "tenant": "default", "roles": ["reviewer"]},
        {"name": "bo", "tenant": "default", "roles": ["reader", "writer"]},
    ]
    assert ana["key"] not in listed.output
    removed = keys(tmp_path, "remove", "ana")
    assert removed.exit_code == 0, removed.output
    assert "a running service takes this up within 10 s" in said(removed)
    assert KeyRing.from_file(path).principal(ana["key"]) is None
    assert KeyRing.from_file(path).principal(bo["key"]) is not None


def test_refusals_say_what_is_wrong(tmp_path: Path) -> None:
    assert keys(tmp_path, "add", "ana", "--role", "reviewer").exit_code == 0
    taken = keys(tmp_path, "add", "ana", "--role", "reader")
    assert taken.exit_code == 1
    assert "a key named 'ana' exists" in said(taken)
    role = keys(tmp_path, "add", "cy", "--role", "boss")
    assert role.exit_code == 1
    assert "--role boss: a role is one of reader, writer, reviewer, admin" in said(role)
    unknown = keys(tmp_path, "remove", "zed")
    assert unknown.exit_code == 1
    assert "no key named 'zed'" in said(unknown)
    assert "its keys: ana" in said(unknown)
    assert keys(tmp_path, "add", "dee").exit_code == 2  # --role is required
    (tmp_path / "api_keys.json").write_text('{"not": "a list"}')
    broken = keys(tmp_path, "list")
    assert broken.exit_code == 1
    assert "expected a JSON list of keys" in said(broken)
