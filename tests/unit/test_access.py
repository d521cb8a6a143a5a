"""Which visibility rules apply to a caller, and how they merge."""

from __future__ import annotations

import pytest

from openpacs.archive.records import Visibility
from openpacs.config import VisibilityRule, load_settings
from openpacs.errors import ConfigError
from openpacs.web.access import visibility_for
from openpacs.web.auth.principal import Principal

RULES = [
    VisibilityRule(users=("bob",), institutions=("North",)),
    VisibilityRule(groups=("radiology-south",), calling_aets=("CT_SOUTH",), labels=("x",)),
    VisibilityRule(users=("bob",), groups=("teaching",), labels=("teaching",)),
]


def test_rules_naming_the_user_or_a_group_merge() -> None:
    bob = Principal("bob", "user", "session", groups=frozenset({"radiology-south"}))
    assert visibility_for(bob, RULES) == Visibility(
        institutions=frozenset({"North"}),
        calling_aets=frozenset({"CT_SOUTH"}),
        labels=frozenset({"x", "teaching"}),
    )
    carol = Principal("carol", "user", "oidc", groups=frozenset({"teaching"}))
    assert visibility_for(carol, RULES) == Visibility(labels=frozenset({"teaching"}))


def test_admins_and_users_no_rule_names_see_everything() -> None:
    assert visibility_for(Principal("bob", "admin", "session"), RULES) is None
    assert visibility_for(Principal("dave", "user", "session"), RULES) is None
    assert visibility_for(Principal("dave", "user", "oidc", groups=frozenset({"x"})), RULES) is None


def test_a_rule_needs_someone_and_something() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OPENPACS_AUTH__VISIBILITY": '[{"labels": ["a"]}]'})
    assert "auth.visibility[0].users: a rule needs users or groups" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OPENPACS_AUTH__VISIBILITY": '[{"users": ["a"]}]'})
    assert "at least one value" in str(caught.value)
