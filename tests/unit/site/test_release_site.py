"""The site shows the version, its release date and what changed in it."""

from __future__ import annotations

import re

from coop100.versions.release import read_releases
from tests.conftest import RECORDS


def test_landing_page_links_what_changed(client):
    latest = read_releases(RECORDS)[0]
    page = client.get("/").text
    assert f"Version {latest.version}, released {latest.released}:" in page
    assert '<a href="/changes">what changed in this version</a>' in page
    assert '<a href="/data/CHANGES.md" download>Release notes (CHANGES.md)</a>' in page


def test_changes_page_shows_the_newest_notes(client):
    latest = read_releases(RECORDS)[0]
    response = client.get("/changes")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"<h1>What changed in version {latest.version}</h1>" in page
    # The notes rendered from Markdown: `code` became <code>, no backticks left.
    notes = page.split('<section class="coop100-release-notes">')[1].split("</section>")[0]
    first_code = re.search(r"`([^`]+)`", latest.notes)
    assert first_code is not None
    assert f"<code>{first_code.group(1)}</code>" in notes
    assert "`" not in notes
    assert client.get("/data/CHANGES.md").status_code == 200
