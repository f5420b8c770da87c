"""Write a synthetic records tree of any size: the real records plus a seeded bulk archive.

The hand-edited YAML files are copied as they are (the archive grows around the
real webinar and refers to its sources, topics and organisations); the synthetic
rows go to records/bulk/<table>.jsonl, one JSON object per line. The same
--statements and --seed always give byte-identical files.

Example:

    python benchmarks/synth.py --statements 100000 --out benchmarks/work/100k
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The frozen records the tests run on: the benchmarks measure the same data over time.
REAL_RECORDS = ROOT / "tests" / "fixtures" / "records"

SOURCES = ["s1", "s2", "s3", "s4", "s5", "s6"]
TOPICS = [
    "cooperatives",
    "social-and-solidarity-economy",
    "decent-work",
    "future-of-work",
    "covid-19",
    "economic-crisis",
    "forced-displacement",
    "statistics-and-research",
    "history",
    "trade-unions",
    "rural-development",
    "legal-framework",
    "solidarity",
    "international-cooperation",
]
ROOT_ORGANISATIONS = ["ilo", "united-nations", "ess-forum-international", "sciences-po-grenoble"]

GIVEN = (
    "Simel Marieke Jürgen Anna Ramin Courtenay Vic Ana María José Zoë Łukasz Søren Åsa "
    "Chiara Ngozi Oluwaseun Thandiwe Kwame Aigerim Dilnoza Mehmet Ayşe Nguyễn Thị "
    "Ólafur Sigríður Ewa Dušan Mārtiņš Björn Renée François Hélène Inés Joaquín "
    "Ярослава Дмитрий Σοφία Νίκος Hiroshi Yuki 美玲 伟 Aarav Priyā Fatimə Amal Youssef"
).split()
FAMILY = (
    "Esim Louis Schwettmann Biondi Behzad Venton Müller Þórsdóttir García Núñez "
    "Kowalczyk Øverland Ängström Rossi Okonkwo Mensah Dlamini Nurlanovna Yıldız Öztürk "
    "Trần Lê Hernández Dvořák Bērziņš Lindqvist Lefèvre Côté Peña Muñoz Шевченко "
    "Иванова Παπαδοπούλου 山田 王 Sharma Rahman Haddad El-Amin van der Berg de Souza"
).split()
ROLES = [
    "Director",
    "Senior Specialist",
    "Programme Officer",
    "Professor",
    "Associate Professor",
    "Research Fellow",
    "President",
    "Secretary-General",
    "Policy Adviser",
    "Chairperson of the Board",
    "Coordinator",
    "Minister",
]
ORG_WORDS = (
    "Cooperative Federation Alliance Network Institute Council Union Centre Bureau "
    "Solidarity Economy Workers Producers Rural Credit Housing Consumers Research "
    "Development Social Agricultural Fishers Artisans Women Youth Savings"
).split()
PLACES = (
    "Geneva Nairobi Dakar São Paulo Bogotá Kraków Reykjavík İzmir Hà Nội Osaka Quebec "
    "Montréal Córdoba Accra Lagos Almaty Tashkent Tallinn Riga Sevilla Zürich Tromsø"
).split()
COUNTRIES = "CH KE SN BR CO PL IS TR VN JP CA AR GH NG KZ UZ EE LV ES NO DE FR IT IN".split()
SUBJECTS = [
    "Cooperatives",
    "The social and solidarity economy",
    "Worker-owned enterprises",
    "Credit unions",
    "Agricultural cooperatives",
    "Housing cooperatives",
    "Platform cooperatives",
    "Mutual societies",
    "Women-led cooperatives",
    "Youth cooperatives",
]
VERBS = [
    "create decent jobs",
    "keep communities together in a crisis",
    "give members a voice in the economy",
    "need a legal framework that recognises them",
    "deserve better statistics",
    "can help refugees rebuild their livelihoods",
    "carry out vital tasks in rural areas",
    "have a place in the future of work",
    "work with trade unions on shared goals",
    "were central to the ILO's history",
]
TAILS = [
    "as the previous speaker said",
    "above all in Africa and Latin America",
    "during and after the COVID-19 pandemic",
    "according to the latest survey",
    "in line with Recommendation No. 193",
    "for a hundred years and counting",
    "when public policy supports them",
    "in the cities as much as in the countryside",
]
STATEMENT_TYPES = ["presentation", "claim", "claim", "claim", "call-to-action", "agreement"]


def _fold(text: str) -> str:
    """ASCII slug part of a Unicode name; empty when nothing Latin is left."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = decomposed.encode("ascii", "ignore").decode().lower()
    words = "".join(c if c.isalnum() else " " for c in ascii_text).split()
    return "-".join(words)


def _slug(prefix: str, number: int, name: str = "") -> str:
    folded = _fold(name)
    return f"{prefix}{number}-{folded}" if folded else f"{prefix}{number}"


class Archive:
    """A seeded generator of every bulk table, sized by its number of statements."""

    def __init__(self, statements: int, seed: int = 100) -> None:
        self.statements = statements
        self.rng = random.Random(seed)
        self.n_people = max(20, statements // 10)
        self.n_organisations = max(10, statements // 200)

    def _source(self, s1_paragraph: bool = True) -> dict[str, Any]:
        source = self.rng.choice(SOURCES)
        if source == "s1":
            return (
                {"source_id": "s1", "paragraph": self.rng.randint(1, 8)}
                if s1_paragraph
                else {"source_id": "s1"}
            )
        return {"source_id": source}

    def organisations(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.organisation_ids: list[str] = []
        for i in range(self.n_organisations):
            words = rng.sample(ORG_WORDS, 2)
            place = rng.choice(PLACES)
            name = f"{words[0]} {words[1]} of {place}"
            row: dict[str, Any] = {"organisation_id": _slug("o", i, name), "name": name}
            # Trees: a third are roots, the rest hang under an earlier organisation.
            if i < 3 or rng.random() < 0.33:
                row["type"] = rng.choice(["network", "university", "government-ministry"])
                if rng.random() < 0.5:
                    row["parent_organisation_id"] = rng.choice(ROOT_ORGANISATIONS)
                row["country"] = rng.choice(COUNTRIES)
                row["founded"] = str(rng.randint(1844, 2019))
            else:
                row["type"] = rng.choice(["department", "unit", "bureau"])
                row["parent_organisation_id"] = rng.choice(self.organisation_ids)
            if rng.random() < 0.2:
                row["short_name"] = "".join(w[0] for w in words).upper() + place[:2].upper()
            if rng.random() < 0.05:
                row["wikidata_id"] = f"Q{rng.randint(1, 99_999_999)}"
            row |= self._source(s1_paragraph=rng.random() < 0.5)
            self.organisation_ids.append(row["organisation_id"])
            yield row

    def people(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.person_ids: list[str] = []
        self.names: list[str] = []
        for i in range(self.n_people):
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            name = unicodedata.normalize("NFC", f"{given} {family}")
            row: dict[str, Any] = {
                "person_id": _slug("p", i, name),
                "name": name,
                "sort_name": f"{family}, {given}",
            }
            if rng.random() < 0.7:
                row["honorific"] = rng.choice(["Ms", "Mr"])
            row |= self._source()
            self.person_ids.append(row["person_id"])
            self.names.append(name)
            yield row

    def person_names(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for person_id, name in zip(self.person_ids, self.names, strict=True):
            yield {
                "person_name_id": f"{person_id}-n0",
                "person_id": person_id,
                "name": name,
                "preferred": True,
                "source_id": "s2",
            }
            for k in range(1, rng.randint(1, 3)):
                variant = _fold(name).replace("-", " ").title() or name.upper()
                if k == 2:
                    variant = name.upper()
                yield {
                    "person_name_id": f"{person_id}-n{k}",
                    "person_id": person_id,
                    "name": variant,
                    "preferred": False,
                    **self._source(),
                }

    def affiliations(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        self.preferred_affiliation: list[str] = []
        for person_id in self.person_ids:
            chosen = ""
            for claim in range(rng.randint(1, 2)):
                organisation = rng.choice(self.organisation_ids)
                rivals = rng.randint(1, 3)  # several sources, conflicting titles
                winner = rng.randrange(rivals)
                start = rng.randint(1990, 2018)
                for r in range(rivals):
                    row: dict[str, Any] = {
                        "affiliation_id": f"{person_id}-a{claim}-{r}",
                        "person_id": person_id,
                        "organisation_id": organisation,
                        "role": rng.choice(ROLES),
                        "start": str(start),
                        "former": claim > 0,
                        "claim_key": f"{person_id}-c{claim}",
                        "preferred": r == winner,
                    }
                    if claim > 0:
                        row["end"] = f"{start + rng.randint(0, 5)}-{rng.randint(1, 12):02d}"
                    if r != winner:
                        row["note"] = (
                            "Another source gives a different title; the organiser's wins."
                        )
                    row |= self._source()
                    if r == winner and not chosen:
                        chosen = row["affiliation_id"]
                    yield row
            self.preferred_affiliation.append(chosen)

    def events_and_rest(
        self,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events with 3-15 speakers each, their participations, statements and topics."""
        rng = self.rng
        made = 0
        programme = -1
        event_number = 0
        while made < self.statements:
            if event_number % 50 == 0:
                programme += 1
                year = 2000 + programme % 25
                programme_id = f"programme-{programme}"
                yield (
                    "events",
                    {
                        "event_id": programme_id,
                        "name": f"Cooperative dialogues {year}, series {programme}",
                        "type": "programme",
                        "start_date": f"{year}-01-15",
                        "organiser_organisation_id": rng.choice(self.organisation_ids),
                        "description": "A year of webinars and symposiums on cooperatives.",
                        **self._source(),
                    },
                )
            event_id = f"event-{event_number}"
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            hour = rng.randint(7, 18)
            event: dict[str, Any] = {
                "event_id": event_id,
                "name": f"{rng.choice(SUBJECTS)} in {rng.choice(PLACES)}",
                "type": rng.choice(["webinar", "webinar", "symposium"]),
                "parent_event_id": programme_id,
                "start_date": f"{year}-{month:02d}-{day:02d}",
                "end_date": f"{year}-{month:02d}-{day:02d}",
                "start_time": f"{hour:02d}:00",
                "end_time": f"{hour + 1:02d}:30",
                "time_zone": "Europe/Zurich",
                "mode": rng.choice(["online", "in-person", "hybrid"]),
                "organiser_organisation_id": rng.choice(self.organisation_ids),
                "attendance_summary": rng.randint(20, 2000),
                "countries": rng.randint(1, 120),
                "description": f"Speakers discussed {rng.choice(VERBS)} {rng.choice(TAILS)}.",
                **self._source(),
            }
            yield "events", event
            # People recur: a few are on many panels (square of a uniform number).
            speakers = rng.randint(3, 15)
            chosen: set[int] = set()
            while len(chosen) < speakers:
                chosen.add(int(rng.random() ** 2 * self.n_people))
            said: list[str] = []
            for order, person in enumerate(sorted(chosen), start=1):
                person_id = self.person_ids[person]
                row: dict[str, Any] = {
                    "participation_id": f"{event_id}-{order}",
                    "person_id": person_id,
                    "event_id": event_id,
                    "role": "facilitator" if order == 1 else "speaker",
                    "speaking_order": order,
                    **self._source(),
                }
                if self.preferred_affiliation[person]:
                    row["affiliation_id"] = self.preferred_affiliation[person]
                yield "participations", row
                for k in range(rng.randint(1, 5)):
                    if made >= self.statements:
                        break
                    statement_id = f"{event_id}-{order}-{k}"
                    statement: dict[str, Any] = {
                        "statement_id": statement_id,
                        "event_id": event_id,
                        "person_id": person_id,
                        "type": "introduction" if order == 1 and k == 0 else "",
                        "text": self._text(),
                        **self._source(),
                    }
                    if not statement["type"]:
                        statement["type"] = rng.choice(STATEMENT_TYPES)
                    if said and rng.random() < 0.15:
                        statement["responds_to_statement_id"] = rng.choice(said)
                    said.append(statement_id)
                    made += 1
                    yield "statements", statement
                    for topic in rng.sample(TOPICS, rng.randint(1, 3)):
                        yield "statement_topics", {"statement_id": statement_id, "topic_id": topic}
            event_number += 1

    def _text(self) -> str:
        rng = self.rng
        sentences = [
            f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(TAILS)}."
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6)))
        ]
        return " ".join(sentences)


BULK_TABLES = (
    "organisations",
    "people",
    "person_names",
    "affiliations",
    "events",
    "participations",
    "statements",
    "statement_topics",
)


def write_archive(out: Path, statements: int, seed: int = 100) -> dict[str, int]:
    """Write out/records/ (real YAML + synthetic bulk JSONL); return rows per table."""
    records = out / "records"
    if records.exists():
        shutil.rmtree(records)
    shutil.copytree(REAL_RECORDS, records, ignore=shutil.ignore_patterns("bulk"))
    bulk = records / "bulk"
    bulk.mkdir()
    archive = Archive(statements, seed)
    counts = dict.fromkeys(BULK_TABLES, 0)
    handles = {t: (bulk / f"{t}.jsonl").open("w", encoding="utf-8") for t in BULK_TABLES}
    try:

        def put(table: str, row: dict[str, Any]) -> None:
            handles[table].write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[table] += 1

        for row in archive.organisations():
            put("organisations", row)
        for row in archive.people():
            put("people", row)
        for row in archive.person_names():
            put("person_names", row)
        for row in archive.affiliations():
            put("affiliations", row)
        for table, row in archive.events_and_rest():
            put(table, row)
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, required=True, help="number of statements")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--out", type=Path, help="project folder (default benchmarks/work/<N>)")
    args = parser.parse_args()
    out = args.out or ROOT / "benchmarks" / "work" / str(args.statements)
    counts = write_archive(out, args.statements, args.seed)
    print(json.dumps({"root": str(out), "rows": counts}))


if __name__ == "__main__":
    main()
