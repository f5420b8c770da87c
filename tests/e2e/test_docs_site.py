"""The documentation site: it builds with --strict, documents every command and setting,
fetches nothing from another origin, and the site serves it at /docs/ like any page."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from coop100.cli import cli
from coop100.site.build import build_site, datasette_app
from coop100.site.docs import inline_script_hashes
from tests.conftest import ROOT
from tests.site_fixtures import SiteClient, copy_package

HOOKS = ROOT / "docs" / "_hooks" / "reference.py"
SETTINGS_MODULES = ("coop100.settings", "coop100.site.settings")


def _hooks() -> object:
    spec = importlib.util.spec_from_file_location("docs_reference", HOOKS)
    assert spec and spec.loader
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def build_docs(site_dir: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the repository's docs into site_dir."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder holding the fixture package and the built documentation."""
    root = copy_package(tmp_path_factory.mktemp("docs-site"))
    built = build_docs(root / "build" / "site" / "docs")
    assert built.returncode == 0, built.stderr
    return root


@pytest.fixture(scope="module")
def docs(docs_root: Path) -> Path:
    return docs_root / "build" / "site" / "docs"


def _page(docs: Path, path: str) -> str:
    return (docs / path / "index.html").read_text(encoding="utf-8")


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    """--strict is what keeps the pages' links, includes and nav honest: prove it bites."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!", ""))
    assert config["strict"] is True
    broken = tmp_path / "docs"
    broken.mkdir()
    (broken / "index.md").write_text("# Home\n\nSee [nowhere](nowhere.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nstrict: true\n")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "nowhere.md" in done.stderr


def test_every_page_is_in_the_nav(docs: Path) -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages and all(page in config for page in pages), pages


def test_every_command_is_documented_from_its_help(docs: Path) -> None:
    page = _text(_page(docs, "reference/cli"))
    for name, command in cli.commands.items():
        assert f"coop100 {name}" in page, name
        for param in command.params:
            for option in param.opts:
                if option.startswith("--"):
                    assert option in page, (name, option)
        summary = (command.help or "").strip().splitlines()[0]
        assert summary in page, (name, summary)


@pytest.mark.parametrize("module", SETTINGS_MODULES)
def test_every_setting_is_documented(docs: Path, module: str) -> None:
    """Every upper-case name the module binds is on the settings page, with its value
    or where it comes from, and each has a comment or a section saying what it is for."""
    settings = _hooks().settings_of(module)  # type: ignore[attr-defined]
    bound = {name for name in vars(importlib.import_module(module)) if name.isupper()}
    assert {s.name for s in settings} == bound
    page = _page(docs, "reference/settings")
    for setting in settings:
        assert f"<code>{setting.name}</code>" in page, setting.name
        assert setting.description or setting.section or setting.value.startswith("from `")


def test_the_generator_reads_comments_and_sections() -> None:
    by_name = {s.name: s for s in _hooks().settings_of("coop100.site.settings")}  # type: ignore[attr-defined]
    assert by_name["CHANGES_URL"].description.startswith("what changed in this version")
    assert by_name["SQL_TIME_LIMIT_MS"].section == "limits (Datasette settings)"
    assert by_name["MAX_VALUE_BYTES"].value == "100_000"
    assert by_name["MAX_RETURNED_ROWS"].value == "from `coop100.settings`"


def test_the_readme_parts_and_change_logs_are_included(docs: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tables = _text(_page(docs, "using/download"))
    for table in re.findall(r"^\| `(\w+)` \| ", readme, flags=re.M):
        assert table in tables
    assert "read_parquet" in tables and "How to cite" in tables
    changes = (ROOT / "CHANGES.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (.+)$", changes, flags=re.M)
    assert newest and newest.group(1) in _page(docs, "reference/data-changes")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([\d.]+)\]", changelog, flags=re.M)
    assert versions and all(v in _page(docs, "reference/changelog") for v in versions)


def test_pages_fetch_nothing_from_another_origin(docs: Path) -> None:
    """No web fonts, CDN scripts or styles: the site's CSP would refuse them anyway."""
    loads = re.compile(r"<(?:script|link|img|iframe)\b[^>]*?(?:src|href)=\"([^\"]+)\"")
    for page in docs.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert '<html lang="en"' in html, page
        for url in loads.findall(html):
            assert not re.match(r"(https?:)?//", url), (page, url)
    css = "".join(p.read_text(encoding="utf-8") for p in docs.rglob("*.css"))
    assert "fonts.googleapis" not in css and "@import url(http" not in css


def test_the_pages_inline_scripts_are_few_and_fixed(docs: Path) -> None:
    """mkdocs.yml fixes Material's scope script, so the CSP needs a few hashes, not one a page."""
    assert 1 <= len(inline_script_hashes(docs)) <= 3


@pytest.fixture(scope="module")
def docs_client(docs_root: Path) -> Iterator[SiteClient]:
    client = SiteClient(datasette_app(build_site(docs_root)))
    yield client
    client.loop.close()


def test_the_site_serves_the_docs_with_its_headers(docs_client: SiteClient, docs: Path) -> None:
    page = docs_client.get("/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["access-control-allow-origin"] == "*"
    assert page.headers["cache-control"] == "public, max-age=60"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert all(h in csp for h in inline_script_hashes(docs))
    etag = page.headers["etag"]
    assert docs_client.get("/docs/", headers={"if-none-match": etag}).status_code == 304
    assert docs_client.get("/docs/using/http/").status_code == 200
    asset = next((docs / "assets" / "javascripts").glob("bundle.*.js")).name
    script = docs_client.get(f"/docs/assets/javascripts/{asset}")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert docs_client.get("/docs").status_code in (301, 307, 308)
    missing = docs_client.get("/docs/no-such-page/")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"
    escape = docs_client.get("/docs/%2E%2E/%2E%2E/%2E%2E/datapackage.json")
    assert escape.status_code == 404
    assert docs_client.post("/docs/").status_code == 405
    assert '<a href="/docs/">Documentation</a>' in docs_client.get("/").text


def test_without_built_docs_the_landing_page_does_not_link_them(client: SiteClient) -> None:
    assert "/docs/" not in client.get("/").text
    assert client.get("/docs").status_code == 404


def test_settings_hook_is_the_one_definition() -> None:
    """The hook reads the modules' source; it holds no setting of its own."""
    tree = ast.parse(HOOKS.read_text(encoding="utf-8"))
    names = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert all(name.startswith("_") for name in names), names


def test_the_changelog_has_a_section_per_code_version() -> None:
    """Keep a Changelog: [Unreleased] first, then versions newest first, the newest
    being pyproject.toml's version; the data's releases are CHANGES.md's, not here."""
    import tomllib

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d\d-\d\d))?$", changelog, flags=re.M)
    assert headings[0] == ("Unreleased", "")
    versions = [tuple(int(n) for n in v.split(".")) for v, _ in headings[1:]]
    assert versions and versions == sorted(versions, reverse=True)
    assert all(date for _, date in headings[1:])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert headings[1][0] == project["version"]
    assert not re.search(r"^#+ Data — package", changelog, flags=re.M)
