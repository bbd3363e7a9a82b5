"""A schema shaped like an authority's Standard Safeguarding Dataset on PostgreSQL (the SSD's
Postgres variant), for tests and bench/ssd_sync.py: the tables caseclock reads, each with the
columns of the SSD's published data model, personal ones included (names, dates of birth,
postcodes, JSON outcomes), so tests can show those are never read.

The PostgreSQL server is CASECLOCK_TEST_SSD_URL, else the one CASECLOCK_TEST_DATABASE_URL
names, else postgres on 127.0.0.1; a test needing it skips when none answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

TABLES: Mapping[str, str] = {
    "ssd_person": """
        pers_legacy_id varchar(48), pers_person_id varchar(48) PRIMARY KEY, pers_upn varchar(13),
        pers_forename varchar(100), pers_surname varchar(255), pers_sex varchar(20),
        pers_gender varchar(10), pers_ethnicity varchar(48), pers_dob timestamp,
        pers_single_unique_id varchar(48), pers_upn_unknown varchar(6), pers_send_flag char(5),
        pers_expected_dob timestamp, pers_death_date timestamp, pers_is_mother char(1),
        pers_nationality varchar(48)""",
    "ssd_department": """
        dept_team_id varchar(48) PRIMARY KEY, dept_team_name varchar(255),
        dept_team_parent_id varchar(48), dept_team_parent_name varchar(255)""",
    "ssd_professionals": """
        prof_professional_id varchar(48) PRIMARY KEY, prof_staff_id varchar(48),
        prof_professional_name varchar(300), prof_social_worker_registration_no varchar(48),
        prof_agency_worker_flag char(1), prof_professional_job_title varchar(500),
        prof_professional_caseload integer, prof_professional_department varchar(100),
        prof_full_time_equivalency double precision""",
    "ssd_involvements": """
        invo_involvements_id varchar(48) PRIMARY KEY, invo_professional_id varchar(48),
        invo_professional_role_id varchar(200), invo_professional_team varchar(48),
        invo_person_id varchar(48), invo_involvement_start_date timestamp,
        invo_involvement_end_date timestamp, invo_worker_change_reason varchar(200),
        invo_referral_id varchar(48)""",
    "ssd_cin_episodes": """
        cine_referral_id varchar(48) PRIMARY KEY, cine_person_id varchar(48),
        cine_referral_date timestamp, cine_cin_primary_need_code varchar(3),
        cine_referral_source_code varchar(48), cine_referral_source_desc varchar(255),
        cine_referral_outcome_json varchar(4000), cine_referral_nfa char(1),
        cine_close_reason varchar(100), cine_close_date timestamp,
        cine_referral_team varchar(48), cine_referral_worker_id varchar(100)""",
    "ssd_cin_assessments": """
        cina_assessment_id varchar(48) PRIMARY KEY, cina_person_id varchar(48),
        cina_referral_id varchar(48), cina_assessment_start_date timestamp,
        cina_assessment_child_seen char(1), cina_assessment_auth_date timestamp,
        cina_assessment_outcome_json varchar(1000), cina_assessment_outcome_nfa char(1),
        cina_assessment_team varchar(48), cina_assessment_worker_id varchar(100)""",
    "ssd_s47_enquiry": """
        s47e_s47_enquiry_id varchar(48) PRIMARY KEY, s47e_referral_id varchar(48),
        s47e_person_id varchar(48), s47e_s47_start_date timestamp, s47e_s47_end_date timestamp,
        s47e_s47_nfa char(1), s47e_s47_outcome_json varchar(1000),
        s47e_s47_completed_by_team varchar(48), s47e_s47_completed_by_worker_id varchar(100)""",
    "ssd_initial_cp_conference": """
        icpc_icpc_id varchar(48) PRIMARY KEY, icpc_icpc_meeting_id varchar(48),
        icpc_s47_enquiry_id varchar(48), icpc_person_id varchar(48), icpc_cp_plan_id varchar(48),
        icpc_referral_id varchar(48), icpc_icpc_transfer_in char(1),
        icpc_icpc_target_date timestamp, icpc_icpc_date timestamp,
        icpc_icpc_outcome_cp_flag char(1), icpc_icpc_outcome_json varchar(1000),
        icpc_icpc_team varchar(48), icpc_icpc_worker_id varchar(100)""",
    "ssd_cp_plans": """
        cppl_cp_plan_id varchar(48) PRIMARY KEY, cppl_referral_id varchar(48),
        cppl_icpc_id varchar(48), cppl_person_id varchar(48), cppl_cp_plan_start_date timestamp,
        cppl_cp_plan_end_date timestamp, cppl_cp_plan_ola char(1),
        cppl_cp_plan_initial_category varchar(100), cppl_cp_plan_latest_category varchar(100)""",
    "ssd_cp_visits": """
        cppv_cp_visit_id varchar(48) PRIMARY KEY, cppv_person_id varchar(48),
        cppv_cp_plan_id varchar(48), cppv_cp_visit_date timestamp, cppv_cp_visit_seen char(1),
        cppv_cp_visit_seen_alone char(1), cppv_cp_visit_bedroom char(1)""",
    "ssd_cp_reviews": """
        cppr_cp_review_id varchar(48) PRIMARY KEY, cppr_person_id varchar(48),
        cppr_cp_plan_id varchar(48), cppr_cp_review_due timestamp, cppr_cp_review_date timestamp,
        cppr_cp_review_meeting_id varchar(48), cppr_cp_review_outcome_continue_cp char(1),
        cppr_cp_review_quorate varchar(100), cppr_cp_review_participation varchar(100)""",
    "ssd_cla_episodes": """
        clae_cla_episode_id varchar(48) PRIMARY KEY, clae_person_id varchar(48),
        clae_cla_placement_id varchar(48), clae_cla_episode_start_date timestamp,
        clae_cla_episode_start_reason varchar(100), clae_cla_primary_need_code varchar(3),
        clae_cla_episode_ceased_date timestamp, clae_cla_episode_ceased_reason varchar(255),
        clae_cla_id varchar(48), clae_referral_id varchar(48),
        clae_cla_last_iro_contact_date timestamp, clae_entered_care_date timestamp""",
    "ssd_cla_placement": """
        clap_cla_placement_id varchar(48) PRIMARY KEY, clap_cla_id varchar(48),
        clap_person_id varchar(48), clap_cla_placement_start_date timestamp,
        clap_cla_placement_type varchar(100), clap_cla_placement_urn varchar(48),
        clap_cla_placement_distance double precision, clap_cla_placement_provider varchar(48),
        clap_cla_placement_postcode varchar(8), clap_cla_placement_end_date timestamp,
        clap_cla_placement_change_reason varchar(100)""",
    "ssd_cla_reviews": """
        clar_cla_review_id varchar(48) PRIMARY KEY, clar_cla_id varchar(48),
        clar_cla_review_due_date timestamp, clar_cla_review_date timestamp,
        clar_cla_review_cancelled char(1), clar_cla_review_participation varchar(100)""",
    "ssd_cla_visits": """
        clav_cla_visit_id varchar(48) PRIMARY KEY, clav_cla_id varchar(48),
        clav_person_id varchar(48), clav_cla_visit_date timestamp, clav_cla_visit_seen char(1),
        clav_cla_visit_seen_alone char(1)""",
    "ssd_care_leavers": """
        clea_table_id varchar(48), clea_person_id varchar(48),
        clea_care_leaver_eligibility varchar(100), clea_care_leaver_in_touch varchar(100),
        clea_care_leaver_latest_contact timestamp, clea_care_leaver_accommodation varchar(100),
        clea_care_leaver_accom_suitable varchar(100), clea_care_leaver_activity varchar(100),
        clea_pathway_plan_review_date timestamp, clea_care_leaver_personal_advisor varchar(100),
        clea_care_leaver_allocated_team varchar(48), clea_care_leaver_worker_id varchar(100)""",
}
KEYS: Mapping[str, str] = {
    name: next(part.split()[0] for part in ddl.split(",") if "PRIMARY KEY" in part)
    for name, ddl in TABLES.items()
    if "PRIMARY KEY" in ddl
}


def server_url() -> str:
    """The PostgreSQL server the SSD schemas are made on (asyncpg URL)."""
    configured = os.environ.get("CASECLOCK_TEST_SSD_URL") or os.environ.get(
        "CASECLOCK_TEST_DATABASE_URL", ""
    )
    if configured.startswith("postgresql"):
        url = make_url(configured)
    else:
        url = make_url("postgresql://postgres@127.0.0.1:5432/postgres")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


class SsdDatabase:
    """A schema of its own on the server, with the SSD's tables; rows added, changed and
    removed by the test."""

    def __init__(self, engine: AsyncEngine, url: str, schema: str) -> None:
        self.engine = engine
        self.url = url
        self.schema = schema

    @classmethod
    async def create(cls, url: str | None = None, schema: str | None = None) -> SsdDatabase:
        url = url or server_url()
        schema = schema or f"ssd_{uuid.uuid4().hex[:10]}"
        # No pool: a bench makes the schema and drops it from different event loops.
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            for name, columns in TABLES.items():
                await connection.execute(text(f'CREATE TABLE "{schema}".{name} ({columns})'))
        return cls(engine, url, schema)

    @property
    def source_url(self) -> str:
        """The URL as an authority would give it (plain postgresql://)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        names = ", ".join(columns)
        values = ", ".join(":" + c for c in columns)
        statement = text(f'INSERT INTO "{self.schema}".{table} ({names}) VALUES ({values})')  # noqa: S608
        async with self.engine.begin() as connection:
            await connection.execute(statement, [dict(row) for row in rows])

    async def update(self, table: str, key: str, **values: Any) -> None:
        sets = ", ".join(f"{column} = :{column}" for column in values)
        async with self.engine.begin() as connection:
            await connection.execute(
                text(f'UPDATE "{self.schema}".{table} SET {sets} WHERE {KEYS[table]} = :key'),  # noqa: S608
                {**values, "key": key},
            )

    async def delete(self, table: str, key: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                text(f'DELETE FROM "{self.schema}".{table} WHERE {KEYS[table]} = :key'),  # noqa: S608
                {"key": key},
            )

    async def truncate(self, table: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(f'TRUNCATE "{self.schema}".{table}'))

    async def drop(self) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        await self.engine.dispose()


async def reachable(url: str) -> bool:
    engine = create_async_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except (OSError, Exception):
        return False
    finally:
        await engine.dispose()
