"""Constants of the published package, gathered in one place."""

from __future__ import annotations

# -- package -------------------------------------------------------------------

PACKAGE_NAME = "ilo-coop-100"
# Semantic versioning of the data: major for a changed or removed column,
# minor for new rows or columns, patch for corrections.
PACKAGE_VERSION = "1.0.0"
PACKAGE_TITLE = "ILO COOP 100: the launch webinar of 23 March 2020"
PACKAGE_DESCRIPTION = (
    "On 23 March 2020 the ILO's Cooperatives Unit opened its centenary year with a "
    "webinar. This package records the event, the people who spoke, the organisations "
    "they belonged to and what each of them said, every row tied to its source. "
    "Where the sources disagree, both claims are kept and one is marked preferred."
)
PACKAGE_HOMEPAGE = (
    "https://www.ilo.org/global/topics/cooperatives/news/WCMS_739649/lang--en/index.htm"
)
PACKAGE_KEYWORDS = [
    "cooperatives",
    "social and solidarity economy",
    "International Labour Organization",
    "ILO COOP 100",
    "webinar",
    "decent work",
]
DATA_LICENSE = {
    "name": "CC-BY-4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
    "title": "Creative Commons Attribution 4.0 (the data)",
}
CODE_LICENSE = {
    "name": "MIT",
    "path": "https://opensource.org/license/mit",
    "title": "MIT License (the code that builds the data)",
}
CONTRIBUTORS = [{"title": "coop100 contributors", "roles": ["creator", "curator"]}]

DATA_PACKAGE_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"

# -- layout (relative to the project root) ---------------------------------------

RECORDS_DIR = "records"
DESCRIPTOR = "datapackage.json"
SCHEMAS_DIR = "schemas"
CSV_DIR = "build/csv"
PARQUET_DIR = "build/parquet"

# -- validation at scale ------------------------------------------------------------

# From this many bytes of CSV on, `coop100 validate` checks rows with pyarrow
# compute (fastcheck.py) instead of frictionless, which reads one cell at a time.
FASTCHECK_MIN_BYTES = 1 << 20
