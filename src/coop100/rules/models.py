"""One Pydantic model per published table: types, constraints and descriptions.

The field descriptions written here are the only copy: they flow into the
Table Schemas, datapackage.json, the Parquet field metadata and Datasette.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from coop100.rules.checks import (
    PY_SPACE,
    Check,
    Mask,
    RowCheck,
    calendar_bad,
    char_class,
    code_points,
    differ,
    either,
    fullmatch_bad,
    matches,
    never,
    refuses,
)

# -- limits ------------------------------------------------------------------

MAX_TEXT = 2000
MAX_NAME = 200

# ISO 3166-1 alpha-2, the 249 assigned codes (from tzdata's iso3166.tab, 2026):
# two capital letters are not enough, UK and EU are the classic mistakes.
COUNTRY_CODES = frozenset(
    (
        "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN "
        "BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
        "DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL "
        "GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM "
        "JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME "
        "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
        "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD "
        "SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO "
        "TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
    ).split()
)

# -- value types -------------------------------------------------------------
#
# Each rule on a value is a Check: its Python form (run by Pydantic on every YAML
# record) and its Arrow form (run by bulk.py over whole columns) side by side.

# Patterns are matched whole: re.fullmatch in Python, checks.fullmatch_bad in Arrow.
_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_FORMULA_START = "=+-@\t\r"
# Characters that Unicode compatibility (NFKC) folds into a formula start: their
# full-width, small, superscript and subscript forms. A test proves the list whole.
FORMULA_LOOKALIKES = (
    "\u207a\u207c\u208a\u208c\ufb29\ufe62\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20"
)
# Quotes a spreadsheet or a tool may strip before it reads a cell as a formula.
_FORMULA_QUOTES = "'\""
_PARTIAL_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}"
_COUNTRY = r"[A-Z]{2}"
_URL = r"https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?:[/?#][^\s]*)?"
_WIKIDATA = r"Q[1-9][0-9]*"


def _strict_str(value: Any) -> str:
    if value is None:
        raise ValueError("must not be empty; give a value or leave the field out")
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {type(value).__name__} {value!r}")
    return value


def _formula_prefix(value: str) -> str:
    """The start of value a spreadsheet could read as a formula, or ''."""
    unquoted = value.lstrip(_FORMULA_QUOTES)
    if unquoted[:1] and unquoted[0] in _FORMULA_START + FORMULA_LOOKALIKES:
        return value[: len(value) - len(unquoted) + 1]
    return ""


def _clean_text(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if not value:
        raise ValueError("must not be empty")
    prefix = _formula_prefix(value)
    if prefix:
        lookalike = prefix[-1] in FORMULA_LOOKALIKES
        like = (
            f" (a look-alike of {unicodedata.normalize('NFKC', prefix[-1])!r})" if lookalike else ""
        )
        raise ValueError(
            f"starts with {prefix!r}{like}, which spreadsheets run as a formula; reword it"
        )
    bad = [c for c in value if unicodedata.category(c) == "Cc"]
    if bad:
        raise ValueError(f"holds the control character U+{ord(bad[0]):04X}; remove it")
    invisible = [c for c in value if unicodedata.category(c) == "Cf"]
    if invisible:
        char = invisible[0]
        raise ValueError(
            f"holds the invisible character U+{ord(char):04X} "
            f"({unicodedata.name(char, 'format character')}); text may hold no bidi "
            "controls, zero-width or other format characters: remove it"
        )
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("is not in Unicode NFC form; retype it or normalise it to NFC")
    return value


@functools.cache
def _invisible_class() -> str:
    # Computed on first use: walking every code point takes 0.2 s, which the
    # YAML-only build does not pay.
    return char_class(code_points("Cf"))


def _clean_text_bad(values: Mask) -> Mask:
    space = f"[{PY_SPACE}]"
    formula = char_class(_FORMULA_START + FORMULA_LOOKALIKES)
    quotes = char_class(_FORMULA_QUOTES)
    # The last character on its own: RE2 looks for `{space}$` all along each text.
    last = pc.utf8_slice_codeunits(values, -1)
    return pc.or_(
        pc.or_(
            pc.or_(matches(values, f"^(?:{space}|{quotes}*{formula})"), matches(last, space)),
            pc.equal(pc.utf8_length(values), 0),
        ),
        _unclean(values),
    )


def _unclean(values: Mask) -> Mask:
    """True where a text holds a control or invisible character, or is not in NFC.

    An ASCII text is in NFC and holds no invisible character, and its control
    characters are the ones `ascii_is_printable` refuses: only the other texts are
    searched (RE2) and normalised, which at 1M statements (all ASCII) took 0.8 of
    the text rule's 0.9 s.
    """
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([_unclean(chunk) for chunk in values.chunks], pa.bool_())
    ascii = pc.fill_null(pc.string_is_ascii(values), True)
    bad = pc.and_(ascii, pc.invert(pc.ascii_is_printable(values)))
    others = pc.invert(ascii)
    if not pc.any(others).as_py():
        return bad
    rest = pc.filter(values, others)
    rest_bad = pc.or_(
        matches(rest, rf"[\x{{0}}-\x{{1f}}\x{{7f}}-\x{{9f}}]|{_invisible_class()}"),
        pc.not_equal(pc.utf8_normalize(rest, "NFC"), rest),
    )
    return pc.replace_with_mask(bad, others, rest_bad)


def _slug(value: str) -> str:
    if not re.fullmatch(_SLUG, value):
        raise ValueError(
            f"{value!r} is not an id: use lower-case letters and digits joined by single hyphens"
        )
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(_ISO_DATE, value):
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the calendar") from None


def _iso_date_bad(values: Mask) -> Mask:
    return pc.or_(fullmatch_bad(values, _ISO_DATE), calendar_bad(values))


def _partial_date(value: str) -> str:
    if not re.fullmatch(_PARTIAL_DATE, value):
        raise ValueError(f"{value!r} is not a date written YYYY, YYYY-MM or YYYY-MM-DD")
    padded = value + "-01" * (2 - value.count("-"))
    try:
        date.fromisoformat(padded)
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the calendar") from None
    return value


def _partial_date_bad(values: Mask) -> Mask:
    length = pc.utf8_length(values)
    padded = pc.if_else(
        pc.equal(length, 4),
        pc.binary_join_element_wise(values, "-01-01", ""),
        pc.if_else(pc.equal(length, 7), pc.binary_join_element_wise(values, "-01", ""), values),
    )
    return pc.or_(fullmatch_bad(values, _PARTIAL_DATE), calendar_bad(padded))


def _clock_time(value: Any) -> time:
    if not isinstance(value, str) or not re.fullmatch(_TIME, value):
        raise ValueError(f"{value!r} is not a time written HH:MM (quote it in YAML)")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day") from None


def _country(value: str) -> str:
    if not re.fullmatch(_COUNTRY, value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code (two capital letters)")
    if value not in COUNTRY_CODES:
        hint = "; the United Kingdom is GB" if value == "UK" else ""
        raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 code{hint}")
    return value


def _country_bad(values: Mask) -> Mask:
    return pc.invert(pc.is_in(values, pa.array(sorted(COUNTRY_CODES), pa.string())))


def _url(value: str) -> str:
    if not re.fullmatch(_URL, value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _wikidata(value: str) -> str:
    if not re.fullmatch(_WIKIDATA, value):
        raise ValueError(f"{value!r} is not a Wikidata item id such as Q54129")
    return value


_Str = Annotated[str, Check("text", py=_strict_str, arrow=never, before=True)]
_CleanText = Check(
    "no white space at either end, no formula start, no control or invisible "
    "characters, Unicode NFC",
    py=_clean_text,
    arrow=_clean_text_bad,
)
Text = Annotated[_Str, _CleanText, Field(max_length=MAX_TEXT)]
Name = Annotated[_Str, _CleanText, Field(max_length=MAX_NAME)]
Slug = Annotated[
    _Str,
    Check("lower-case words joined by hyphens", py=_slug, arrow=refuses(_SLUG)),
    Field(max_length=80),
]
IsoDate = Annotated[
    date, Check("a day, YYYY-MM-DD", py=_iso_date, arrow=_iso_date_bad, before=True)
]
PartialDate = Annotated[
    _Str, Check("YYYY, YYYY-MM or YYYY-MM-DD", py=_partial_date, arrow=_partial_date_bad)
]
# Unicode digits pass the Python pattern but not time.fromisoformat: ASCII only.
ClockTime = Annotated[
    time,
    Check(
        "a time of day, HH:MM",
        py=_clock_time,
        arrow=refuses(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"),
        before=True,
    ),
]
Country = Annotated[
    _Str, Check("an assigned ISO 3166-1 alpha-2 code", py=_country, arrow=_country_bad)
]
Url = Annotated[
    _Str,
    Check("an http(s) URL", py=_url, arrow=refuses(_URL)),
    Field(max_length=500),
]
WikidataId = Annotated[_Str, Check("a Wikidata item id", py=_wikidata, arrow=refuses(_WIKIDATA))]
Paragraph = Annotated[StrictInt, Field(ge=1)]

# -- rules between fields of one row ---------------------------------------------------
#
# Each is a RowCheck: the message the model gives (None: the row passes) and the
# Arrow mask of the rows it refuses, side by side.


_NOT_OWN_PARENT = differ(
    "parent_organisation_id", "organisation_id", "an organisation cannot be its own parent"
)


def _role_dates(row: Any) -> str | None:
    if row.start and row.end and row.end < row.start[: len(row.end)]:
        return f"{row.end} is before start {row.start}"
    return None


def _role_dates_bad(t: pa.Table) -> Mask:
    end, start = t["end"], t["start"]
    # end < start[:len(end)], per length of end (4, 7 or 10 characters)
    cut = pc.if_else(
        pc.equal(pc.utf8_length(end), 4),
        pc.utf8_slice_codeunits(start, 0, 4),
        pc.if_else(
            pc.equal(pc.utf8_length(end), 7),
            pc.utf8_slice_codeunits(start, 0, 7),
            pc.utf8_slice_codeunits(start, 0, 10),
        ),
    )
    return pc.fill_null(pc.less(end, cut), False)


_ROLE_DATES_IN_ORDER = RowCheck("end", _role_dates, _role_dates_bad)
_ROLE_OR_ORGANISATION = either(
    "role", "organisation_id", "give a role, an organisation_id, or both"
)


def _event_dates(row: Any) -> str | None:
    if row.end_date is not None and row.end_date < row.start_date:
        return f"{row.end_date} is before start_date {row.start_date}"
    return None


# Both dates were checked to be real days; as ISO text they order as dates.
_EVENT_DATES_IN_ORDER = RowCheck(
    "end_date",
    _event_dates,
    lambda t: pc.fill_null(pc.less(t["end_date"], t["start_date"]), False),
)
_NOT_OWN_PARENT_EVENT = differ("parent_event_id", "event_id", "an event cannot be part of itself")
_HAS_SPEAKER = either(
    "person_id", "organisation_id", "a statement needs a person_id or an organisation_id"
)
_NOT_ITS_OWN_ANSWER = differ(
    "responds_to_statement_id", "statement_id", "a statement cannot answer itself"
)

# -- controlled vocabularies --------------------------------------------------


class EventType(StrEnum):
    PROGRAMME = "programme"
    WEBINAR = "webinar"
    SYMPOSIUM = "symposium"
    SESSION = "session"
    INTERVIEW = "interview"


class Mode(StrEnum):
    ONLINE = "online"
    IN_PERSON = "in-person"
    HYBRID = "hybrid"


class OrganisationType(StrEnum):
    INTERGOVERNMENTAL = "intergovernmental-organisation"
    DEPARTMENT = "department"
    UNIT = "unit"
    BUREAU = "bureau"
    UNIVERSITY = "university"
    GOVERNMENT_MINISTRY = "government-ministry"
    NETWORK = "network"
    BRANCH = "branch"
    COOPERATIVE = "cooperative"
    FEDERATION = "federation"
    COMPANY = "company"
    NGO = "ngo"
    RESEARCH_INSTITUTE = "research-institute"
    TRADE_UNION = "trade-union"


class SourceKind(StrEnum):
    NEWS_POST = "news-post"
    NEWS_ITEM = "news-item"
    ARTICLE = "article"
    INTERVIEW = "interview"
    WEB_PAGE = "web-page"
    KNOWLEDGE_BASE = "knowledge-base"
    EVENT_PAGE = "event-page"
    SPEECH = "speech"


class Role(StrEnum):
    FACILITATOR = "facilitator"
    SPEAKER = "speaker"
    MODERATOR = "moderator"
    CHAIR = "chair"
    DISCUSSANT = "discussant"
    AUTHOR = "author"
    INTERVIEWEE = "interviewee"
    INTERVIEWER = "interviewer"
    WELCOME = "welcome"


class StatementType(StrEnum):
    INTRODUCTION = "introduction"
    PRESENTATION = "presentation"
    CLAIM = "claim"
    CALL_TO_ACTION = "call-to-action"
    AGREEMENT = "agreement"
    EDITORIAL = "editorial"
    WELCOME = "welcome"
    ANSWER = "answer"


class Honorific(StrEnum):
    MS = "Ms"
    MR = "Mr"
    DR = "Dr"
    PROF = "Prof"


# -- models --------------------------------------------------------------------


class Record(BaseModel):
    """Base of every table row: closed, immutable, every row names its source."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    table: ClassVar[str]
    table_title: ClassVar[str]
    table_description: ClassVar[str]
    primary_key: ClassVar[tuple[str, ...]]
    # field -> (table, field) it refers to
    foreign_keys: ClassVar[dict[str, tuple[str, str]]] = {}
    # Rules between fields of one row, in the order they are tried.
    row_checks: ClassVar[tuple[RowCheck, ...]] = ()

    @property
    def key(self) -> str:
        return "/".join(str(getattr(self, f)) for f in self.primary_key)

    @model_validator(mode="after")
    def _check_row(self) -> Record:
        for check in self.row_checks:
            message = check.py(self)
            if message is not None:
                raise ValueError(f"{check.field}: {message}")
        return self


class Sourced(Record):
    """A row that rests on a source, and on one of its paragraphs where they are numbered.

    The rules between a row and its source (integrity.py) judge the paragraph: a
    source that numbers its paragraphs (sources.paragraphs) must be cited to one of
    them, and no other source can be.
    """

    # Whether a row resting on a source that numbers its paragraphs must name one:
    # an organisation may rest on a document's byline, which is no paragraph.
    paragraph_required: ClassVar[bool] = True

    source_id: Slug = Field(description="The source this row rests on (sources.source_id)")
    paragraph: Paragraph | None = Field(
        default=None,
        description=(
            "Paragraph of the source this row rests on (see sources.paragraphs); "
            "empty when the source does not number its paragraphs"
        ),
    )


class Source(Record):
    """A document the package rests on (one row of `sources`)."""

    table = "sources"
    table_title = "Sources"
    table_description = (
        "The documents every row rests on, each with where it is published and, "
        "where rows cite it by paragraph, how many paragraphs its text has."
    )
    primary_key = ("source_id",)
    foreign_keys = {"publisher_organisation_id": ("organisations", "organisation_id")}

    source_id: Slug = Field(description="Stable identifier")
    label: Name = Field(description="Short label to cite the source by")
    title: Name = Field(description="Title of the document as published, or a description")
    publisher: Name = Field(description="Who published the document")
    publisher_organisation_id: Slug | None = Field(
        default=None, description="The publisher as an organisation of this package, if it is one"
    )
    url: Url | None = Field(default=None, description="Where the document is published")
    published: IsoDate | None = Field(
        default=None, description="Publication date; empty when the document does not state it"
    )
    kind: SourceKind = Field(description="What kind of document it is")
    language: Annotated[_Str, Field(pattern=r"^[a-z]{2}$")] = Field(
        description="Language of the document's text, ISO 639-1"
    )
    paragraphs: StrictInt | None = Field(
        default=None,
        ge=1,
        description=(
            "How many numbered paragraphs its text has (its non-empty lines after the "
            "title, counted from 1), when rows cite it by paragraph; empty otherwise"
        ),
    )
    note: Text | None = Field(default=None, description="What the source covers, in our words")


class Organisation(Sourced):
    """An organisation named in a source (one row of `organisations`)."""

    table = "organisations"
    table_title = "Organisations"
    table_description = (
        "Organisations the people belonged to, that organised an event or that "
        "published a source, each unit linked to the organisation it is part of."
    )
    primary_key = ("organisation_id",)
    paragraph_required = False
    row_checks = (_NOT_OWN_PARENT,)
    foreign_keys = {
        "parent_organisation_id": ("organisations", "organisation_id"),
        "source_id": ("sources", "source_id"),
    }

    organisation_id: Slug = Field(description="Stable identifier")
    name: Name = Field(description="Name as the organisation itself writes it, in English")
    short_name: Name | None = Field(default=None, description="Acronym or short name, if any")
    type: OrganisationType = Field(description="What kind of organisation it is")
    parent_organisation_id: Slug | None = Field(
        default=None, description="The organisation this one is part of"
    )
    country: Country | None = Field(
        default=None, description="Country of its seat, ISO 3166-1 alpha-2; empty if unknown"
    )
    founded: PartialDate | None = Field(
        default=None,
        description="When it was founded, as precisely as a source says: YYYY, YYYY-MM or a date",
    )
    former_name: Name | None = Field(
        default=None, description="Earlier name, if a source gives one"
    )
    wikidata_id: WikidataId | None = Field(
        default=None, description="Wikidata item id; only ids the sources give, never guessed"
    )
    note: Text | None = Field(default=None, description="Anything a reader should know")


class OrganisationName(Sourced):
    """A name an organisation was known by, with when (one row of `organisation_names`)."""

    table = "organisation_names"
    table_title = "Organisation names"
    table_description = (
        "The names each organisation has had, one row per name per source, with the "
        "years the source says each was used."
    )
    primary_key = ("organisation_name_id",)
    foreign_keys = {
        "organisation_id": ("organisations", "organisation_id"),
        "source_id": ("sources", "source_id"),
    }

    organisation_name_id: Slug = Field(description="Stable identifier")
    organisation_id: Slug = Field(description="Whose name this is")
    name: Name = Field(description="The name as the source writes it")
    start: PartialDate | None = Field(
        default=None, description="When the name came into use, as precisely as the source says"
    )
    end: PartialDate | None = Field(
        default=None, description="When it stopped being used; empty if still used or unknown"
    )
    note: Text | None = Field(default=None, description="Anything a reader should know")

    row_checks = (_ROLE_DATES_IN_ORDER,)


class Person(Sourced):
    """A person who took part in an event or holds a role a source names (one row of `people`)."""

    table = "people"
    table_title = "People"
    table_description = (
        "Everyone who took part in an event or holds a role a source names, "
        "once each, under the name the organiser uses."
    )
    primary_key = ("person_id",)
    foreign_keys = {"source_id": ("sources", "source_id")}

    person_id: Slug = Field(description="Stable identifier")
    name: Name = Field(description="Full name as the organiser of their events spells it")
    sort_name: Name = Field(description="Family name first, for sorting")
    honorific: Honorific | None = Field(
        default=None, description="Form of address the organiser uses (Ms, Mr)"
    )
    wikidata_id: WikidataId | None = Field(
        default=None, description="Wikidata item id; only ids the sources give, never guessed"
    )


class PersonName(Sourced):
    """One spelling of a person's name in one source (one row of `person_names`)."""

    table = "person_names"
    table_title = "Name spellings"
    table_description = (
        "Each spelling of each person's name, per source; the preferred one is the "
        "organiser's and equals people.name."
    )
    primary_key = ("person_name_id",)
    foreign_keys = {
        "person_id": ("people", "person_id"),
        "source_id": ("sources", "source_id"),
    }

    person_name_id: Slug = Field(description="Stable identifier")
    person_id: Slug = Field(description="Whose name this is")
    name: Name = Field(description="The name exactly as this source spells it")
    preferred: StrictBool = Field(description="True for the spelling the package uses")


class Affiliation(Sourced):
    """One source's claim that a person held a role (one row of `affiliations`)."""

    table = "affiliations"
    table_title = "Affiliations"
    table_description = (
        "Who held which role in which organisation, one row per claim per source. "
        "Rows sharing a claim_key are competing claims about one fact; exactly one "
        "of them is preferred."
    )
    primary_key = ("affiliation_id",)
    foreign_keys = {
        "person_id": ("people", "person_id"),
        "organisation_id": ("organisations", "organisation_id"),
        "source_id": ("sources", "source_id"),
    }

    affiliation_id: Slug = Field(description="Stable identifier")
    person_id: Slug = Field(description="Who held the role")
    organisation_id: Slug | None = Field(
        default=None, description="Where the role was held; empty for independent work"
    )
    role: Name | None = Field(
        default=None, description="Job title or role as the source gives it; empty if it names none"
    )
    start: PartialDate | None = Field(
        default=None, description="When the role began, as precisely as the source says"
    )
    end: PartialDate | None = Field(
        default=None, description="When the role ended, as precisely as the source says"
    )
    former: StrictBool = Field(description="True when the source says the role was already over")
    claim_key: Slug = Field(
        description="The fact this row is a claim about; shared by rival claims"
    )
    preferred: StrictBool = Field(description="True for the claim the package prefers")
    note: Text | None = Field(default=None, description="Why this claim is or is not preferred")

    row_checks = Sourced.row_checks + (_ROLE_DATES_IN_ORDER, _ROLE_OR_ORGANISATION)


class Event(Sourced):
    """An event (one row of `events`)."""

    table = "events"
    table_title = "Events"
    table_description = (
        "Every event, each part of the programme, symposium or series it belongs to."
    )
    primary_key = ("event_id",)
    foreign_keys = {
        "parent_event_id": ("events", "event_id"),
        "organiser_organisation_id": ("organisations", "organisation_id"),
        "source_id": ("sources", "source_id"),
    }

    event_id: Slug = Field(description="Stable identifier")
    name: Name = Field(description="Name of the event")
    type: EventType = Field(description="What kind of event it is")
    parent_event_id: Slug | None = Field(default=None, description="The event this one is part of")
    start_date: IsoDate = Field(description="First day")
    end_date: IsoDate | None = Field(default=None, description="Last day, if known")
    start_time: ClockTime | None = Field(default=None, description="Start time as announced")
    end_time: ClockTime | None = Field(default=None, description="End time as announced")
    time_zone: Name | None = Field(
        default=None, description="Time zone of the times; empty when no source states it"
    )
    mode: Mode | None = Field(default=None, description="Online, in person or both")
    platform: Name | None = Field(default=None, description="Software the online event ran on")
    organiser_organisation_id: Slug | None = Field(default=None, description="Who organised it")
    occasion: Text | None = Field(default=None, description="What the event marks")
    occasion_date: IsoDate | None = Field(default=None, description="Date of what it marks")
    attendance_summary: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Participants per the summary of the source (a lower bound: 'over')",
    )
    attendance_body: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Participants per the body of the source (a lower bound: 'more than')",
    )
    countries: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Countries the participants came from (a lower bound: 'over')",
    )
    description: Text = Field(description="What happened, in our words")

    row_checks = Sourced.row_checks + (_EVENT_DATES_IN_ORDER, _NOT_OWN_PARENT_EVENT)


class Participation(Sourced):
    """A person's part in an event (one row of `participations`)."""

    table = "participations"
    table_title = "Participations"
    table_description = (
        "Who took part in which event, in what role, in what order, in which capacity."
    )
    primary_key = ("participation_id",)
    foreign_keys = {
        "person_id": ("people", "person_id"),
        "event_id": ("events", "event_id"),
        "affiliation_id": ("affiliations", "affiliation_id"),
        "source_id": ("sources", "source_id"),
    }

    participation_id: Slug = Field(description="Stable identifier")
    person_id: Slug = Field(description="Who took part")
    event_id: Slug = Field(description="In which event")
    role: Role = Field(description="Their role at the event")
    speaking_order: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Order of speaking at the event as the row's source lists it; empty if none",
    )
    affiliation_id: Slug | None = Field(
        default=None, description="The preferred affiliation they spoke in"
    )
    note: Text | None = Field(default=None, description="Where the sources disagree about this")


class Statement(Sourced):
    """One thing a speaker said, as a source reports it (one row of `statements`)."""

    table = "statements"
    table_title = "Statements"
    table_description = (
        "Each distinct thing a source reports a speaker saying, one claim a row, in "
        "our own short wording; a remark of a source's publisher is the organisation's."
    )
    primary_key = ("statement_id",)
    foreign_keys = {
        "event_id": ("events", "event_id"),
        "person_id": ("people", "person_id"),
        "organisation_id": ("organisations", "organisation_id"),
        "responds_to_statement_id": ("statements", "statement_id"),
        "source_id": ("sources", "source_id"),
    }

    statement_id: Slug = Field(description="Stable identifier")
    event_id: Slug = Field(description="Where it was said")
    person_id: Slug | None = Field(default=None, description="Who said it, if a person")
    organisation_id: Slug | None = Field(
        default=None, description="Who said it, if an organisation (an editorial remark)"
    )
    type: StatementType = Field(description="What kind of statement it is")
    text: Text = Field(description="What was said, summarised in our own words")
    responds_to_statement_id: Slug | None = Field(
        default=None, description="The statement this one answers or agrees with"
    )

    row_checks = Sourced.row_checks + (_HAS_SPEAKER, _NOT_ITS_OWN_ANSWER)


class Topic(Record):
    """A subject from the controlled vocabulary (one row of `topics`)."""

    table = "topics"
    table_title = "Topics"
    table_description = "A small controlled vocabulary of subjects the statements touch."
    primary_key = ("topic_id",)

    topic_id: Slug = Field(description="Stable identifier")
    label: Name = Field(description="Label for display")
    definition: Text = Field(description="What the topic covers")


class StatementTopic(Record):
    """A statement touching a topic (one row of `statement_topics`)."""

    table = "statement_topics"
    table_title = "Statement topics"
    table_description = "Which statements touch which topics."
    primary_key = ("statement_id", "topic_id")
    foreign_keys = {
        "statement_id": ("statements", "statement_id"),
        "topic_id": ("topics", "topic_id"),
    }

    statement_id: Slug = Field(description="The statement")
    topic_id: Slug = Field(description="A topic it touches")


# Publication order: a table comes after every table it refers to, except
# sources <-> organisations, which refer to each other.
MODELS: tuple[type[Record], ...] = (
    Source,
    Organisation,
    OrganisationName,
    Person,
    PersonName,
    Affiliation,
    Event,
    Participation,
    Statement,
    Topic,
    StatementTopic,
)
MODEL_BY_TABLE: dict[str, type[Record]] = {m.table: m for m in MODELS}


# -- the package's own words (records/package.yaml) ------------------------------------


class _Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class License(_Words):
    """A licence as Data Package v2 names it."""

    name: Name = Field(description="SPDX identifier")
    path: Url = Field(description="Where its text is")
    title: Name = Field(description="What it covers, for a reader")


class Contributor(_Words):
    """Someone credited in the descriptor and the citation."""

    title: Name = Field(description="Name of the person or group")
    roles: list[Name] = Field(description="Data Package roles: creator, curator, publisher…")


class Agent(_Words):
    """Who publishes the package, or whom to contact about it."""

    name: Name = Field(description="Name of the person or organisation")
    url: Url | None = Field(default=None, description="Their web address, if any")
    email: Name | None = Field(default=None, description="Their e-mail address, if any")


# A DOI as Crossref and DataCite give them: the 10. prefix, a registrant, a suffix.
Doi = Annotated[_Str, Field(pattern=r"^10\.[0-9]{4,9}/[^\s]+$", max_length=200)]
# The EU Publications Office's data themes (DCAT-AP's vocabulary for dcat:theme):
# code -> English label.
DATA_THEMES = {
    "AGRI": "Agriculture, fisheries, forestry and food",
    "ECON": "Economy and finance",
    "EDUC": "Education, culture and sport",
    "ENER": "Energy",
    "ENVI": "Environment",
    "GOVE": "Government and public sector",
    "HEAL": "Health",
    "INTR": "International issues",
    "JUST": "Justice, legal system and public safety",
    "OP_DATPRO": "Provisional data",
    "REGI": "Regions and cities",
    "SOCI": "Population and society",
    "TECH": "Science and technology",
    "TRAN": "Transport",
}


def _data_theme(value: str) -> str:
    if value not in DATA_THEMES:
        raise ValueError(f"{value!r} is not an EU data theme; use one of {', '.join(DATA_THEMES)}")
    return value


DataTheme = Annotated[str, AfterValidator(_data_theme)]


class About(_Words):
    """What the package says of itself: records/package.yaml, the only copy of these words."""

    name: Slug = Field(description="The package's name: lower-case words joined by hyphens")
    title: Name = Field(description="Its title")
    description: Text = Field(description="What it holds, in a few sentences")
    homepage: Url = Field(
        description="The package's own site, without a trailing slash: the one canonical"
        " address every absolute URL in the published metadata starts with (the"
        " environment variable COOP100_SITE_URL overrides it for a test server)"
    )
    repository: Url = Field(
        description="Where the records and the code live: a GitHub repository, whose"
        " releases Zenodo archives"
    )
    doi: Doi | None = Field(
        default=None,
        description="The package's DOI (10.NNNN/…), once Zenodo has minted one; until"
        " then no file names a DOI",
    )
    themes: list[DataTheme] = Field(
        default=[], description="EU data themes a portal files it under (DCAT-AP dcat:theme)"
    )
    keywords: list[Name] = Field(description="Words a catalogue finds it by")
    licenses: list[License] = Field(description="The data's licence first, then the code's")
    contributors: list[Contributor] = Field(description="Who made it")
    publisher: Agent = Field(description="Who publishes it")
    contact: Agent | None = Field(default=None, description="Whom to ask about it, if anyone")
    credit: Text = Field(description="Whom else to credit when citing it, in a sentence")
