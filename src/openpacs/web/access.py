"""Which studies a caller may see: the `[[auth.visibility]]` rules that name the caller (by
user name, or by a provider group), merged into one `Visibility`; None for callers no rule
names and for admins, who see everything. `web.deps` scopes the archive of every request
with it, so every route reads through the same restriction."""

from __future__ import annotations

from collections.abc import Sequence

from openpacs.archive.records import Visibility
from openpacs.config import VisibilityRule
from openpacs.web.auth.principal import Principal


def visibility_for(principal: Principal, rules: Sequence[VisibilityRule]) -> Visibility | None:
    if principal.role == "admin":
        return None
    applying = [
        rule
        for rule in rules
        if principal.name in rule.users or principal.groups.intersection(rule.groups)
    ]
    if not applying:
        return None
    return Visibility(
        institutions=frozenset(v for r in applying for v in r.institutions),
        calling_aets=frozenset(v for r in applying for v in r.calling_aets),
        called_aets=frozenset(v for r in applying for v in r.called_aets),
        referring_physicians=frozenset(v for r in applying for v in r.referring_physicians),
        labels=frozenset(v for r in applying for v in r.labels),
    )
