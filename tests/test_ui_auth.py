"""ui.auth: roles, verified identities and typed names."""
from __future__ import annotations

import gradio as gr
import pytest

from ui.auth import Access, annotator_name, verified_user


@pytest.mark.parametrize("access, verified, token, expected", [
    (Access(), None, None, True),  # nothing configured: a local run
    (Access(admin_token="s3cret"), None, "s3cret", True),
    (Access(admin_token="s3cret"), None, "s3cre", False),
    (Access(admin_token="s3cret"), None, None, False),
    (Access(researchers=frozenset({"carol"})), "carol", None, True),
    (Access(researchers=frozenset({"carol"})), "bob", "anything", False),
    (Access(researchers=frozenset({"carol"})), None, None, False),
])
def test_access_grants(access, verified, token, expected):
    assert access.grants(verified, token) is expected


def test_access_from_env():
    access = Access.from_env({"RMLAB_RESEARCHERS": " carol, dan ,", "RMLAB_ADMIN_TOKEN": ""})
    # a role is configured, so annotators need invites unless RMLAB_SIGNIN says otherwise
    assert access == Access(researchers=frozenset({"carol", "dan"}), admin_token=None, signin="invite")
    assert not access.open
    assert Access.from_env({}) == Access(signin="open") and Access.from_env({}).open
    assert Access.from_env({"RMLAB_ADMIN_TOKEN": "t", "RMLAB_SIGNIN": "Open"}).signin == "open"
    assert Access.from_env({"SYSTEM": "spaces", "OAUTH_CLIENT_ID": "x"}).signin == "oauth"
    with pytest.raises(ValueError, match="RMLAB_SIGNIN='magic': use one of open, invite, oauth"):
        Access.from_env({"RMLAB_SIGNIN": "magic"})


def test_a_verified_identity_wins_over_a_typed_name():
    profile = gr.OAuthProfile({"name": "Carol C", "preferred_username": "carol",
                               "profile": "", "picture": ""})
    assert verified_user(None, profile) == "carol"
    assert annotator_name("mallory", verified_user(None, profile)) == "carol"
    assert annotator_name("  mallory ", None) == "mallory"
    with pytest.raises(gr.Error, match="Enter your name"):
        annotator_name(" ", None)
