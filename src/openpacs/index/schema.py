"""The catalog's tables: one per level, with each level's matching keys as indexed columns.

Person names have a second `_norm` column (upper case, trailing empty components removed) that
matching uses; dates and times are stored in the fixed-width forms of `openpacs.dicom.values`.
Each instance keeps its whole header as DICOM JSON text, so any return key and WADO-RS metadata
are answered without reading the blob.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit keys.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")
# Matching compares code points (ranges, prefixes, GLOB/LIKE): PostgreSQL's "C" collation
# orders UTF-8 bytewise, which is code point order, like SQLite's BINARY and Python.
Key = String().with_variant(String(collation="C"), "postgresql")

patients = Table(
    "patients",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("patient_id", Key, nullable=False, unique=True),
    Column("patient_name", Key, nullable=False, default=""),
    Column("patient_name_norm", Key, nullable=False, default=""),
    Column("patient_birth_date", Key),
    Column("patient_sex", Key),
    Column("created_at", String, nullable=False),
    Index("ix_patients_name_norm", "patient_name_norm"),
    Index("ix_patients_birth_date", "patient_birth_date"),
)

studies = Table(
    "studies",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("patient_pk", PrimaryKey, ForeignKey("patients.pk"), nullable=False),
    Column("study_uid", Key, nullable=False, unique=True),
    Column("study_date", Key),
    Column("study_time", Key),
    Column("accession_number", Key),
    Column("study_id", Key),
    Column("referring_physician_name", Key, nullable=False, default=""),
    Column("referring_physician_name_norm", Key, nullable=False, default=""),
    Column("study_description", Key),
    Column("created_at", String, nullable=False),
    # Where the study came from, for visibility rules (`index/visibility.py`): the
    # InstitutionName of its first instance, the calling and called AE titles of the first
    # C-STORE (empty for other ways in).
    Column("institution_name", Key, nullable=False, default=""),
    Column("source_aet", String(16), nullable=False, default=""),
    Column("received_aet", String(16), nullable=False, default=""),
    Index("ix_studies_patient", "patient_pk"),
    Index("ix_studies_date", "study_date"),
    Index("ix_studies_accession", "accession_number"),
    Index("ix_studies_referring_norm", "referring_physician_name_norm"),
    Index("ix_studies_created", "created_at"),
)

study_labels = Table(
    "study_labels",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("study_pk", PrimaryKey, ForeignKey("studies.pk"), nullable=False),
    Column("label", Key, nullable=False),
    Column("created_at", String, nullable=False),
    Index("ux_study_labels", "study_pk", "label", unique=True),
    Index("ix_study_labels_label", "label"),
)

series = Table(
    "series",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("study_pk", PrimaryKey, ForeignKey("studies.pk"), nullable=False),
    Column("series_uid", Key, nullable=False, unique=True),
    Column("modality", Key),
    Column("series_number", Integer),
    Column("series_description", Key),
    Column("body_part_examined", Key),
    Column("series_date", Key),
    Column("series_time", Key),
    Column("created_at", String, nullable=False),
    Index("ix_series_study", "study_pk", "modality"),
)

instances = Table(
    "instances",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("series_pk", PrimaryKey, ForeignKey("series.pk"), nullable=False),
    Column("sop_uid", Key, nullable=False, unique=True),
    Column("sop_class_uid", Key, nullable=False),
    Column("instance_number", Integer),
    Column("transfer_syntax", String(64), nullable=False),
    Column("blob_key", String(512), nullable=False, unique=True),
    Column("blob_size", BigInteger, nullable=False),
    Column("blob_sha256", String(64), nullable=False),
    Column("created_at", String, nullable=False),
    Column("header", Text, nullable=False),
    # False while `header` holds only the summary of the indexed elements: the whole header
    # is built after the store is acknowledged (`Archive.settle_headers`).
    Column("header_ready", Boolean, nullable=False, default=True, server_default=true()),
    Index("ix_instances_series", "series_pk", "instance_number"),
    Index("ix_instances_sop_class", "sop_class_uid"),
)
# The instances whose whole header is still to be built; a partial index keeps finding
# them (each query that reads headers asks) as cheap as an empty index.
PENDING = ~instances.c.header_ready
Index(
    "ix_instances_header_pending",
    instances.c.pk,
    sqlite_where=PENDING,
    postgresql_where=PENDING,
)

# Indexes the migrations create on PostgreSQL only, outside these models: GIN indexes SQLite
# cannot have, over columns the models do not have (each header as jsonb, its full-text
# vector), for `header_sql` and `text_search`. Schema comparisons leave them out.
POSTGRESQL_ONLY_INDEXES = frozenset({"ix_instances_header_jsonb", "ix_instances_text"})
# PostgreSQL keeps each header parsed as well, in a stored generated `jsonb` column the
# database fills from `header` (migration 0007_search_speed), which those indexes cover and
# `header_sql` and `text_search` read. Not a model column: SQLite has no such column, and
# writes never name it.
HEADER_JSONB = "header_jsonb"
# And each header's full-text vector, in a stored generated `tsvector` column (migration
# 0008_text_vector) under the full-text GIN index, which `text_search` reads; not a model
# column either.
TEXT_VECTOR = "text_vector"
# SQLite's FTS5 table of header values (`text_search`) and the tables FTS5 keeps for it.
SQLITE_TEXT_TABLE = "instances_text"


def compared(name: str | None, type_: str, reflected: bool) -> bool:
    """Alembic's `include_object`: whether a schema item takes part in a comparison."""
    if type_ == "index" and reflected and name in POSTGRESQL_ONLY_INDEXES:
        return False
    if type_ == "column" and reflected and name in (HEADER_JSONB, TEXT_VECTOR):
        return False
    return not (type_ == "table" and reflected and (name or "").startswith(SQLITE_TEXT_TABLE))


LEVEL_TABLES = (patients, studies, series, instances)

# --- site state shared by every server: accounts, audit trail, known AEs, jobs ---------------
# Times are ISO 8601 UTC text, like `created_at` above (it sorts chronologically);
# `*_epoch` columns are seconds since the epoch where the code computes with them.

users = Table(
    "users",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    # The provider groups of a single sign-on user at its last login (JSON list of strings).
    Column("groups", Text, nullable=False, default="[]"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("created_at", String, nullable=False),
    Column("expires_epoch", Float, nullable=False),
    Index("ix_sessions_username", "username"),
    Index("ix_sessions_expires", "expires_epoch"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("token_id", String(32), nullable=False, unique=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("created_at", String, nullable=False),
    Column("expires_epoch", Float),
    Column("last_used_at", String),
    Index("ix_api_tokens_username", "username"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("subject", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_epoch", Float, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("at", String, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("peer", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("resource", String(512), nullable=False, default=""),
    Column("patient_id", Key),
    Column("study_uid", Key),
    Column("series_uid", Key),
    Column("sop_uid", Key),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_audit_at", "at"),
    Index("ix_audit_actor", "actor", "at"),
    Index("ix_audit_action", "action", "at"),
    Index("ix_audit_study", "study_uid"),
)

remote_aes = Table(
    "remote_aes",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("aet", String(16), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("tls", Boolean, nullable=False, default=False),
    Column("created_at", String, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    # The server running the job (`servers.server_id`); NULL while no server holds it.
    Column("owner", String(32)),
    # A send's SOP Instance UIDs in sending order (JSON), so another server can resume it.
    Column("plan", Text, nullable=False, default=""),
    Column("takeovers", Integer, nullable=False, default=0),
    Column("note", Text, nullable=False, default=""),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_owner", "owner"),
)

servers = Table(
    "servers",
    metadata,
    Column("server_id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", String, nullable=False),
    # Seconds since the epoch: the server renews it while it runs; once past, it is gone.
    Column("lease_until", Float, nullable=False),
    Index("ix_servers_lease", "lease_until"),
)
