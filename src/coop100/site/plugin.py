"""The Datasette plugin (entry point `coop100`): it gathers the site's hooks, one module a concern.

- hardening: every connection read-only and capped, visitors' SQL in killable
  worker processes (coop100.site.sqlguard, .hardening, .sqlworker); short 4xx
  answers, one log line each, GET/HEAD only and security headers (.http);
- downloads: the package's files served with ranges, validators and CORS, page
  ETags (.downloads), table arguments read as a person means them (.arguments);
- pages: the landing page and stylesheet (.landing), row pages that read as
  pages and foreign keys shown by name (.pages), Datasette's unnamed form
  controls named (.controls);
- search: searches that cost what a reader sees, and views searched through
  their table's index (.search);
- facets: facet counts read from the database where they are stored (.precounted);
- reading guides: the codebook page and the diagram of the tables (.codebook), loading
  snippets on each table page (.snippets);
- entities: schema.org Person, Organization and Event on their row pages (.entities).

What lets crawlers find and cite the package is a plugin of its own
(coop100.site.discovery, entry point `coop100_discovery`). pluggy registers the
hooks found as attributes of this module, so each is imported here by name.
"""

from __future__ import annotations

import gc
from typing import Any

from datasette import hookimpl

from coop100.site.arguments import read_arguments as read_arguments
from coop100.site.codebook import codebook_css_urls as codebook_css_urls
from coop100.site.codebook import codebook_routes as codebook_routes
from coop100.site.codebook import codebook_template_vars as codebook_template_vars
from coop100.site.controls import control_names_filter as control_names_filter
from coop100.site.downloads import serve_downloads as serve_downloads
from coop100.site.entities import entity_template_vars as entity_template_vars
from coop100.site.http import asgi_wrapper as asgi_wrapper
from coop100.site.http import handle_exception as handle_exception
from coop100.site.http import register_output_renderer as register_output_renderer
from coop100.site.landing import landing_routes as landing_routes
from coop100.site.landing import landing_row_counts as landing_row_counts
from coop100.site.landing import site_css as site_css
from coop100.site.pages import label_foreign_keys as label_foreign_keys
from coop100.site.pages import page_css_urls as page_css_urls
from coop100.site.pages import page_routes as page_routes
from coop100.site.pages import page_template_vars as page_template_vars
from coop100.site.precounted import use_stored_facets as use_stored_facets
from coop100.site.search import cap_searches as cap_searches
from coop100.site.search import search_routes as search_routes
from coop100.site.search import search_views as search_views
from coop100.site.snippets import snippet_js_urls as snippet_js_urls
from coop100.site.snippets import snippet_routes as snippet_routes
from coop100.site.snippets import snippet_template_vars as snippet_template_vars
from coop100.site.sqlguard import guard_sql_requests as guard_sql_requests
from coop100.site.sqlguard import harden_connections as harden_connections


@hookimpl  # type: ignore[untyped-decorator]
def startup(datasette: Any) -> Any:
    """Once everything is imported, keep the garbage collector off those objects.

    A full collection otherwise walks every module, template and metadata object
    Datasette holds, a pause of tens of milliseconds that lands on whichever
    request happens to allocate at that moment (the slowest 5% of page views).
    """

    async def freeze() -> None:
        gc.collect()
        gc.freeze()

    return freeze
