"""Constants of the published package, gathered in one place."""

from __future__ import annotations

# -- package -------------------------------------------------------------------

# The package's own words (name, title, description, keywords, licences, publisher,
# contact, whom else to credit) are records/package.yaml's, read as models.About. The
# version and release date are the first entry of records/releases.json, which
# `coop100 release` writes (see release.py).

DATA_PACKAGE_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
# Overrides package.yaml's homepage (the site's canonical address) for a test server.
SITE_URL_ENV = "COOP100_SITE_URL"
# The site serves the package's files under /data/ (and the database at /coop100.db):
# the package's own metadata gives their absolute URLs, so the layout lives here.
DOWNLOADS_MOUNT = "data"
DB_NAME = "coop100.db"  # the SQLite file (build/coop100.db), served at /coop100.db

# -- releases ----------------------------------------------------------------------

RELEASES_FILE = "records/releases.json"  # every release: version, date, notes
CHANGES_FILE = "CHANGES.md"  # the release notes, published with the package
CHANGES_RESOURCE = "changes"  # its resource name in datapackage.json
CITATION_FILE = "CITATION.cff"  # Citation File Format, written from the releases
CITATION_RESOURCE = "citation"
POPOLO_FILE = "build/popolo/popolo.json"  # the tables as Popolo JSON (popolo.py)
POPOLO_RESOURCE = "popolo"
# The codebook (codebook.py) and the diagram of the tables and their keys (diagram.py).
CODEBOOK_FILE = "build/codebook/codebook.md"
CODEBOOK_RESOURCE = "codebook"
DIAGRAM_FILE = "build/codebook/tables.svg"
DIAGRAM_RESOURCE = "tables-diagram"
# Written from the tables or the models: they change when those do, and their changes say how.
DERIVED_DOCUMENTS = (POPOLO_RESOURCE, CODEBOOK_RESOURCE, DIAGRAM_RESOURCE)
# The documents published at the top of the package, beside datapackage.json.
ROOT_DOCUMENTS = (CHANGES_FILE, CITATION_FILE)
# Written from the releases themselves: a release's own output, not a change in it.
RELEASE_DOCUMENTS = (CHANGES_RESOURCE, CITATION_RESOURCE)
# The package's resources that are files rather than tables, in the descriptor's order
# (documents.py writes them).
FILE_RESOURCES = (
    CHANGES_RESOURCE,
    CITATION_RESOURCE,
    POPOLO_RESOURCE,
    CODEBOOK_RESOURCE,
    DIAGRAM_RESOURCE,
)
# Written after datapackage.json from the same facts (catalog.py), for portals,
# Zenodo and feed readers; not resources of the package, but drift-checked like them.
CATALOG_TURTLE = "catalog.ttl"  # DCAT-AP 3 catalogue, Turtle
CATALOG_JSONLD = "catalog.jsonld"  # the same graph as JSON-LD
ZENODO_FILE = ".zenodo.json"  # Zenodo's deposit metadata, read when a GitHub release is made
FEED_FILE = "changes.atom"  # every release as an Atom feed
CATALOG_FILES = (CATALOG_TURTLE, CATALOG_JSONLD, ZENODO_FILE, FEED_FILE)
# Rows shown per list in a release's notes (the counts are always whole).
RELEASE_NOTES_MAX_ROWS = 50

# -- layout (relative to the project root) ---------------------------------------

RECORDS_DIR = "records"
DESCRIPTOR = "datapackage.json"
SCHEMAS_DIR = "schemas"
CSV_DIR = "build/csv"
PARQUET_DIR = "build/parquet"

# -- what a build owns under build/ ------------------------------------------------

# Besides the CSV and Parquet file of each table, the only files a build (or the
# site's steps after it) may find under build/. The build refuses to run while
# build/ holds anything else, so it can never overwrite or hide a user's file.
# A pattern ending in /** owns everything below that folder.
BUILD_OWNED = (
    "build/.tmp-*",  # staging folders and the site's half-written files
    "build/.tmp-*/**",
    "build/.coop100-publish.json",  # the publish journal (see package.publish)
    "build/.coop100-publish.json.tmp",
    "build/.coop100.lock",
    "build/coop100.db",  # the site branch's SQLite database
    "build/coop100.db-*",
    "build/coop100.zip",  # the site branch's zip of the package
    "build/*.json",
    "build/screenshots/**",
    "build/site/**",  # what the site serves: metadata, row counts, copies of the package
)
PUBLISH_JOURNAL = "build/.coop100-publish.json"
BUILD_LOCK = "build/.coop100.lock"
STAGING_PREFIX = ".tmp-"
# Tests set this to a checkpoint name (see package.checkpoint) to stop a build
# there and SIGKILL it; never set it otherwise.
PAUSE_ENV = "COOP100_TEST_PAUSE_AT"
# -- validation at scale ------------------------------------------------------------

# From this many bytes of CSV on, `coop100 validate` checks rows with pyarrow
# compute (fastcheck.py) instead of frictionless, which reads one cell at a time.
FASTCHECK_MIN_BYTES = 1 << 20

# -- pages of the database (the database indexes them, the site serves them) -------

# Rows on one page of the site (Datasette's max_returned_rows); a stored facet keeps
# one value more, to tell the page there are more.
MAX_RETURNED_ROWS = 1000

# Hidden tables of facet counts stored with the database (coop100.load.facets), read
# by the site's facet class (coop100.site.precounted).
FACET_GROUPS_TABLE = "_facet_groups"
FACET_COUNTS_TABLE = "_facet_counts"
