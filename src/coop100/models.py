"""One Pydantic model per published table: types, constraints and descriptions.

The field descriptions written here are the only copy: they flow into the
Table Schemas, datapackage.json, the Parquet field metadata and Datasette.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

# -- limits ------------------------------------------------------------------

MAX_TEXT = 2000
MAX_NAME = 200
S1_PARAGRAPHS = 8

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

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?\Z")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_TIME = re.compile(r"^\d{2}:\d{2}\Z")


def _strict_str(value: Any) -> str:
    if value is None:
        raise ValueError("must not be empty; give a value or leave the field out")
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {type(value).__name__} {value!r}")
    return value


def _clean_text(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    if not value:
        raise ValueError("must not be empty")
    if value.startswith(_FORMULA_START):
        raise ValueError(
            f"starts with {value[0]!r}, which spreadsheets run as a formula; reword it"
        )
    bad = [c for c in value if unicodedata.category(c) == "Cc"]
    if bad:
        raise ValueError(f"holds the control character U+{ord(bad[0]):04X}; remove it")
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("is not in Unicode NFC form; retype it or normalise it to NFC")
    return value


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not an id: use lower-case letters and digits joined by single hyphens"
        )
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the calendar") from None


def _partial_date(value: str) -> str:
    if not _PARTIAL_DATE.match(value):
        raise ValueError(f"{value!r} is not a date written YYYY, YYYY-MM or YYYY-MM-DD")
    padded = value + "-01" * (2 - value.count("-"))
    try:
        date.fromisoformat(padded)
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the calendar") from None
    return value


def _clock_time(value: Any) -> time:
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValueError(f"{value!r} is not a time written HH:MM (quote it in YAML)")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day") from None


def _country(value: str) -> str:
    if not re.match(r"^[A-Z]{2}\Z", value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code (two capital letters)")
    if value not in COUNTRY_CODES:
        hint = "; the United Kingdom is GB" if value == "UK" else ""
        raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 code{hint}")
    return value


def _url(value: str) -> str:
    if not re.match(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?:[/?#][^\s]*)?\Z", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _wikidata(value: str) -> str:
    if not re.match(r"^Q[1-9][0-9]*\Z", value):
        raise ValueError(f"{value!r} is not a Wikidata item id such as Q54129")
    return value


_Str = Annotated[str, BeforeValidator(_strict_str)]
Text = Annotated[_Str, AfterValidator(_clean_text), Field(max_length=MAX_TEXT)]
Name = Annotated[_Str, AfterValidator(_clean_text), Field(max_length=MAX_NAME)]
Slug = Annotated[_Str, AfterValidator(_slug), Field(max_length=80)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
PartialDate = Annotated[_Str, AfterValidator(_partial_date)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Country = Annotated[_Str, AfterValidator(_country)]
Url = Annotated[_Str, AfterValidator(_url), Field(max_length=500)]
WikidataId = Annotated[_Str, AfterValidator(_wikidata)]
Paragraph = Annotated[StrictInt, Field(ge=1, le=S1_PARAGRAPHS)]

PRIMARY_SOURCE = "s1"

# -- controlled vocabularies --------------------------------------------------


class EventType(StrEnum):
    PROGRAMME = "programme"
    WEBINAR = "webinar"
    SYMPOSIUM = "symposium"


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


class SourceKind(StrEnum):
    NEWS_POST = "news-post"
    NEWS_ITEM = "news-item"
    ARTICLE = "article"
    INTERVIEW = "interview"
    WEB_PAGE = "web-page"
    KNOWLEDGE_BASE = "knowledge-base"


class Role(StrEnum):
    FACILITATOR = "facilitator"
    SPEAKER = "speaker"


class StatementType(StrEnum):
    INTRODUCTION = "introduction"
    PRESENTATION = "presentation"
    CLAIM = "claim"
    CALL_TO_ACTION = "call-to-action"
    AGREEMENT = "agreement"
    EDITORIAL = "editorial"


class Honorific(StrEnum):
    MS = "Ms"
    MR = "Mr"


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

    @property
    def key(self) -> str:
        return "/".join(str(getattr(self, f)) for f in self.primary_key)


class Sourced(Record):
    # Rows drawn from S1's text must say which paragraph; a row resting on S1's
    # byline (its publisher) has none to give.
    s1_paragraph_required: ClassVar[bool] = True

    source_id: Slug = Field(description="The source this row rests on (sources.source_id)")
    paragraph: Paragraph | None = Field(
        default=None,
        description=(
            "Paragraph of S1 (1-8, counting non-empty lines) this row rests on; "
            "empty when the source is not S1"
        ),
    )

    @model_validator(mode="after")
    def _paragraph_only_for_s1(self) -> Sourced:
        if (
            self.source_id == PRIMARY_SOURCE
            and self.paragraph is None
            and self.s1_paragraph_required
        ):
            raise ValueError("paragraph: a row resting on s1 must give its S1 paragraph (1-8)")
        if self.source_id != PRIMARY_SOURCE and self.paragraph is not None:
            raise ValueError(
                f"paragraph: only rows resting on s1 have a paragraph, not {self.source_id!r}"
            )
        return self


class Source(Record):
    """A document the package rests on (one row of `sources`)."""

    table = "sources"
    table_title = "Sources"
    table_description = (
        "The documents every row rests on: S1, the news post the package publishes, "
        "and the ILO pages that corroborate or correct it."
    )
    primary_key = ("source_id",)
    foreign_keys = {"publisher_organisation_id": ("organisations", "organisation_id")}

    source_id: Slug = Field(description="Stable identifier: s1 is the primary text")
    label: Name = Field(description="Short label used in the project: S1 to S6, or Wikidata")
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
        description="Language of the document, ISO 639-1"
    )
    note: Text | None = Field(default=None, description="What the source covers, in our words")


class Organisation(Sourced):
    """An organisation named in a source (one row of `organisations`)."""

    table = "organisations"
    table_title = "Organisations"
    table_description = (
        "Organisations the speakers belonged to or that published a source, "
        "with the ILO's own units linked to their parent."
    )
    primary_key = ("organisation_id",)
    s1_paragraph_required = False
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

    @model_validator(mode="after")
    def _not_own_parent(self) -> Organisation:
        if self.parent_organisation_id == self.organisation_id:
            raise ValueError("parent_organisation_id: an organisation cannot be its own parent")
        return self


class Person(Sourced):
    """A person named in S1 (one row of `people`)."""

    table = "people"
    table_title = "People"
    table_description = "Everyone S1 names as taking part, under the name the organiser uses."
    primary_key = ("person_id",)
    foreign_keys = {"source_id": ("sources", "source_id")}

    person_id: Slug = Field(description="Stable identifier")
    name: Name = Field(description="Full name as the organiser (the ILO) spells it")
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

    @model_validator(mode="after")
    def _dates_in_order(self) -> Affiliation:
        if self.start and self.end and self.end < self.start[: len(self.end)]:
            raise ValueError(f"end: {self.end} is before start {self.start}")
        if self.role is None and self.organisation_id is None:
            raise ValueError("role: give a role, an organisation_id, or both")
        return self


class Event(Sourced):
    """An event (one row of `events`)."""

    table = "events"
    table_title = "Events"
    table_description = (
        "The launch webinar of 23 March 2020 and the ILO COOP 100 programme it opened."
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
        default=None, ge=0, description="Participants per S2's summary line (a lower bound: 'over')"
    )
    attendance_body: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Participants per S2's body text (a lower bound: 'more than')",
    )
    countries: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Countries the participants came from (a lower bound: 'over')",
    )
    description: Text = Field(description="What happened, in our words")

    @model_validator(mode="after")
    def _dates_in_order(self) -> Event:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date: {self.end_date} is before start_date {self.start_date}")
        if self.parent_event_id == self.event_id:
            raise ValueError("parent_event_id: an event cannot be part of itself")
        return self


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
    speaking_order: StrictInt = Field(ge=1, description="Order of speaking as S1 reports it")
    affiliation_id: Slug | None = Field(
        default=None, description="The preferred affiliation they spoke in"
    )
    note: Text | None = Field(default=None, description="Where the sources disagree about this")


class Statement(Sourced):
    """One thing a speaker said, as S1 reports it (one row of `statements`)."""

    table = "statements"
    table_title = "Statements"
    table_description = (
        "Each distinct thing S1 reports a speaker saying, in our own short wording, "
        "and S1's closing remark attributed to its publisher."
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

    @model_validator(mode="after")
    def _has_speaker(self) -> Statement:
        if self.person_id is None and self.organisation_id is None:
            raise ValueError("person_id: a statement needs a person_id or an organisation_id")
        if self.responds_to_statement_id == self.statement_id:
            raise ValueError("responds_to_statement_id: a statement cannot answer itself")
        return self


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
