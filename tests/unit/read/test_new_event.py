"""`coop100 new-event`: the contributor's first step writes an event file that builds."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from coop100.cli import cli
from tests.conftest import RECORDS


def test_new_event_writes_a_template_that_builds_once_filled_in(tmp_path: Path) -> None:
    shutil.copytree(RECORDS, tmp_path / "records")
    runner = CliRunner()
    made = runner.invoke(cli, ["new-event", "made-up-2020", "--root", str(tmp_path)])
    assert made.exit_code == 0, made.output
    path = tmp_path / "records" / "events" / "made-up-2020.yaml"
    text = path.read_text(encoding="utf-8")
    assert "event_id: made-up-2020\n" in text
    # As written, its placeholders are reported, file and line, not a traceback.
    unfilled = runner.invoke(cli, ["build", "--root", str(tmp_path)])
    assert unfilled.exit_code == 1
    assert "records/events/made-up-2020.yaml:" in unfilled.stderr
    for placeholder, value in (
        ("SOURCE_ID", "s1"),
        ("PERSON_ID", "simel-esim"),
        ('"YYYY-MM-DD"', '"2020-05-01"'),
    ):
        text = text.replace(placeholder, value)
    path.write_text(text, encoding="utf-8")
    built = runner.invoke(cli, ["build", "--root", str(tmp_path)])
    assert built.exit_code == 0, built.stderr
    again = runner.invoke(cli, ["new-event", "made-up-2020", "--root", str(tmp_path)])
    assert again.exit_code == 1
    assert "exists already" in again.output
    bad = runner.invoke(cli, ["new-event", "Made Up", "--root", str(tmp_path)])
    assert bad.exit_code == 2
    assert "is not an id" in bad.output
