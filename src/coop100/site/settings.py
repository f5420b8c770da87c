"""Settings of the served site, in one place."""

from __future__ import annotations

# What the database and the site both need (facet tables, the page size, where the
# files are served) lives below both, in coop100.settings; named here for the site's
# modules. How each table is served (order, facets, search) is declared in coop100.serving.
from coop100.settings import DOWNLOADS_MOUNT as DOWNLOADS_MOUNT
from coop100.settings import FACET_COUNTS_TABLE as FACET_COUNTS_TABLE
from coop100.settings import FACET_GROUPS_TABLE as FACET_GROUPS_TABLE
from coop100.settings import MAX_RETURNED_ROWS as MAX_RETURNED_ROWS

# -- where -------------------------------------------------------------------

HOST = "127.0.0.1"
PORT = 8001
DATABASE = "coop100"
CHANGES_URL = "/changes"  # what changed in this version (the newest release notes)
# The landing page's schema.org JSON-LD names at most this many events, each with at
# most this many speakers: at a million rows the page stays small.
JSONLD_MAX_EVENTS = 20
JSONLD_MAX_PERFORMERS = 50
# Row pages listed per sitemap file (the sitemaps protocol allows 50,000 URLs a file).
SITEMAP_MAX_URLS = 50_000

# -- limits (Datasette settings) ----------------------------------------------

SQL_TIME_LIMIT_MS = 1000
FACET_TIME_LIMIT_MS = 200
NUM_SQL_THREADS = 3
# How long browsers and proxies may keep a page: table and query pages (Datasette's
# default_cache_ttl) and the landing page, which changes only with the package.
CACHE_TTL_SECONDS = 60

# -- limits (SQLite, set on every connection by coop100.site.hardening) -------

# Largest string or blob any expression may build or read. The longest value
# stored at a million statements is a 4,053-byte FTS5 page; a record's longest
# text is 2,000 characters (at most 8,000 bytes). 100 kB leaves room for
# group_concat and friends while bounding what one call (like, instr, replace)
# can walk through.
MAX_VALUE_BYTES = 100_000
MAX_SQL_BYTES = 100_000
# SQLite's run-time limits (sqlite3_limit), name -> value, on every connection.
# The canned queries, Datasette's own table, facet and search queries and the
# million-statement archive need far less than any of these.
SQLITE_LIMITS: dict[str, int] = {
    "SQLITE_LIMIT_LENGTH": MAX_VALUE_BYTES,
    "SQLITE_LIMIT_SQL_LENGTH": MAX_SQL_BYTES,
    "SQLITE_LIMIT_ATTACHED": 0,
    # A LIKE or GLOB pattern: twice the longest text a record may hold.
    "SQLITE_LIMIT_LIKE_PATTERN_LENGTH": 4_000,
    # Columns of a result, table, index, ORDER BY or GROUP BY (widest table: 20).
    "SQLITE_LIMIT_COLUMN": 200,
    # Nesting of an expression; a table page with every filter set is below 50.
    "SQLITE_LIMIT_EXPR_DEPTH": 100,
    "SQLITE_LIMIT_COMPOUND_SELECT": 20,
    "SQLITE_LIMIT_FUNCTION_ARG": 64,
    "SQLITE_LIMIT_VARIABLE_NUMBER": 1_000,
}
# SQLite's own heap for the whole served process; a runaway sort fails instead of
# growing. Arbitrary SQL runs in worker processes with a heap of their own.
HEAP_LIMIT_BYTES = 256 * 1024 * 1024
# How much of a served database file each connection maps into memory (the whole
# file at a million statements); reads, not the heap, so not capped by the above.
MMAP_BYTES = 4 << 30
# SQL functions no query may call, even where SQLite would allow it.
FORBIDDEN_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}
)

# -- limits (arbitrary SQL, run by coop100.site.sqlguard) ----------------------

# A request carrying SQL a visitor wrote (?sql=, _where=) or a filter, sort or
# facet of their own choosing runs its queries in one of these worker
# processes, never on Datasette's threads; table pages, row pages, searches and
# canned queries keep those threads to themselves.
SQL_WORKERS = 2
# How long such a request waits for a free worker before a 503 with Retry-After.
SQL_QUEUE_WAIT_MS = 250
# More requests waiting than this get the 503 at once.
SQL_QUEUE_LENGTH = 20
RETRY_AFTER_SECONDS = 2
# A worker still busy this long after the time limit is killed (one SQLite call,
# such as like() over a long value, is never interrupted) and replaced.
SQL_KILL_GRACE_MS = 250
# How long the first ad-hoc request waits for the first workers to start.
WORKER_START_SECONDS = 10
# Each worker's SQLite heap and its whole private memory (RLIMIT_DATA).
WORKER_HEAP_BYTES = 64 * 1024 * 1024
WORKER_MEMORY_BYTES = 384 * 1024 * 1024
# Workers run at the lowest CPU priority: the server answering ordinary pages comes first.
WORKER_NICE = 19
# Most bytes of values, and most values, one query may return (rows are also
# capped by max_returned_rows): the page Datasette renders from them is bounded.
MAX_RESULT_BYTES = 4_000_000
MAX_RESULT_CELLS = 10_000
# The server itself renders what a worker found (an HTML page of 10,000 values
# takes it a fifth of a second). So that back-to-back ad-hoc pages cannot fill
# its time, a worker whose request returned AD_HOC_REST_VALUES values or more
# rests this many times as long as the request kept the server busy beyond the
# first AD_HOC_FREE_MS, at most AD_HOC_REST_MAX_MS, before it takes the next one.
AD_HOC_REST_VALUES = 1_000
AD_HOC_REST_FACTOR = 4
AD_HOC_FREE_MS = 50
AD_HOC_REST_MAX_MS = 1000

# Datasette settings passed to every served instance (name -> value).
DATASETTE_SETTINGS: dict[str, int | bool] = {
    "sql_time_limit_ms": SQL_TIME_LIMIT_MS,
    "facet_time_limit_ms": FACET_TIME_LIMIT_MS,
    "max_returned_rows": MAX_RETURNED_ROWS,
    "num_sql_threads": NUM_SQL_THREADS,
    "allow_download": True,
    # Suggesting facets runs a query per column on every table page.
    "suggest_facets": False,
    "default_cache_ttl": CACHE_TTL_SECONDS,
}

# -- table pages -------------------------------------------------------------

# A view over more rows than this has no default sort or facets: each would join
# and count every row (seconds at a million statements, past facet_time_limit_ms).
VIEW_FACET_MAX_ROWS = 100_000


# -- search --------------------------------------------------------------------

# Views searched through a table's full-text index: view -> (table, key column in both).
# Datasette 0.65 takes fts_table/fts_pk for a view, but matches fts_pk against the
# FTS rowid, and the views have no column holding the table's rowid; the plugin's
# filters_from_request joins through the key instead.
VIEW_SEARCH: dict[str, tuple[str, str]] = {
    "statements_detailed": ("statements", "statement_id"),
}

# A search matching more rows than this is cut to its first SEARCH_MATCH_CAP
# matches (in the order rows were loaded) on table pages: their rows, count and
# facets cover those, and the page says so (Datasette 1.0 likewise counts to 10,000).
# Counting and faceting every match of a common word took ~1 s at 1M statements.
SEARCH_MATCH_CAP = 10_000
# Tables with a search page in relevance order (coop100.site.search), ranked among
# their first SEARCH_RANK_CAP matches: FTS5 computes bm25 for each match it orders.
SEARCH_PAGES = ("statements",)
SEARCH_RANK_CAP = 1_000

# -- files (relative to the project root) --------------------------------------

SITE_DIR = "build/site"
# The documentation site, built by `make docs` (mkdocs.yml) into SITE_DIR/DOCS_MOUNT
# and served at /docs/ when it is there; Datasette knows it as a static mount.
DOCS_MOUNT = "docs"

# -- downloads over HTTP (coop100.site.downloads) ---------------------------------

# Every file is served at a stable URL (/data/<path>, /coop100.db) that browsers and
# proxies revalidate after CACHE_TTL_SECONDS, and at /data/v/<version>/<path>, where
# <version> is a digest of every served file: a URL whose bytes never change.
VERSIONS_PREFIX = "v"
VERSION_CHARS = 16
STABLE_CACHE_CONTROL = f"public, max-age={CACHE_TTL_SECONDS}"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# What the site folder records about the served files (path, size, sha256, media type).
DOWNLOADS_MANIFEST = "downloads.json"
# Media types of the served files that the descriptor does not declare.
MEDIA_TYPES = {
    ".json": "application/json",
    ".zip": "application/zip",
    ".db": "application/vnd.sqlite3",
    ".ttl": "text/turtle; charset=utf-8",
    ".jsonld": "application/ld+json",
    ".atom": "application/atom+xml",
}

# -- CORS: every response may be read by a page on any origin ---------------------

# The site is public and read-only and takes no credentials, so `*` is safe; the
# headers a reader such as DuckDB-WASM or hyparquet sends, and reads back.
CORS_ALLOW_HEADERS = ("Range", "If-Range", "If-None-Match", "If-Modified-Since")
CORS_EXPOSE_HEADERS = (
    "Accept-Ranges",
    "Content-Length",
    "Content-Location",
    "Content-Range",
    "ETag",
    "Last-Modified",
    "Link",
    "Repr-Digest",
)
CORS_MAX_AGE_SECONDS = 86400
