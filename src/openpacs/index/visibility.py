"""Study visibility in SQL: the one predicate every read of the catalog adds for a restricted
user (`Visibility`), at any level: an entity is visible when its study is (a patient when
any of its studies is). Queries, listings, retrieval, single instances and totals all take
it, so no way in can read around it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, false, or_, select

from openpacs.archive.records import Visibility
from openpacs.dicom.levels import Level
from openpacs.dicom.values import normalize_name
from openpacs.index import schema


def study_clause(visibility: Visibility) -> Any:
    """True for the rows of `studies` the visibility shows."""
    st, labels = schema.studies, schema.study_labels
    alternatives: list[Any] = []
    if visibility.institutions:
        alternatives.append(st.c.institution_name.in_(sorted(visibility.institutions)))
    if visibility.calling_aets:
        alternatives.append(st.c.source_aet.in_(sorted(visibility.calling_aets)))
    if visibility.called_aets:
        alternatives.append(st.c.received_aet.in_(sorted(visibility.called_aets)))
    if visibility.referring_physicians:
        names = sorted({normalize_name(n) for n in visibility.referring_physicians})
        alternatives.append(st.c.referring_physician_name_norm.in_(names))
    if visibility.labels:
        alternatives.append(
            exists(
                select(labels.c.pk).where(
                    labels.c.study_pk == st.c.pk, labels.c.label.in_(sorted(visibility.labels))
                )
            )
        )
    return or_(*alternatives) if alternatives else false()


def level_clause(level: Level, visibility: Visibility | None) -> Any:
    """The predicate for a query at `level` whose FROM has the studies table joined (study,
    series and instance levels) or is the patients table; None when unrestricted."""
    if visibility is None:
        return None
    if level is Level.PATIENT:
        st = schema.studies
        return exists(
            select(st.c.pk).where(st.c.patient_pk == schema.patients.c.pk, study_clause(visibility))
        )
    return study_clause(visibility)
