"""Roles and sign-in: who a session is, and whether it may use the researcher tools.

Roles. With neither `RMLAB_RESEARCHERS` nor `RMLAB_ADMIN_TOKEN` set (a local run) everyone
is a researcher. Otherwise a session is a researcher when its *verified* identity (the Hugging
Face OAuth username on Spaces, or the `auth=` login) is listed in `RMLAB_RESEARCHERS`, or when
it signed in with the token `RMLAB_ADMIN_TOKEN`. A typed name never grants a role: anyone can
type any name. Every researcher handler checks the session's role itself, because each Gradio
event is also a public HTTP endpoint.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

import gradio as gr


@dataclass(frozen=True)
class Access:
    """Who may use the researcher handlers (dashboard, export, research tab)."""

    researchers: frozenset[str] = field(default_factory=frozenset, metadata={
        "help": "verified user names with the researcher role (env RMLAB_RESEARCHERS, comma-separated)"})
    admin_token: str | None = field(default=None, metadata={
        "help": "a shared secret that grants the researcher role at sign-in (env RMLAB_ADMIN_TOKEN)"})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Access:
        env = os.environ if env is None else env
        names = frozenset(n.strip() for n in env.get("RMLAB_RESEARCHERS", "").split(",") if n.strip())
        return cls(researchers=names, admin_token=env.get("RMLAB_ADMIN_TOKEN") or None)

    @property
    def open(self) -> bool:
        """No role configured: a local run where everyone is a researcher."""
        return not self.researchers and not self.admin_token

    def grants(self, verified_user: str | None, token: str | None) -> bool:
        if self.open:
            return True
        if verified_user is not None and verified_user in self.researchers:
            return True
        # compare_digest: no timing side channel on the secret
        return bool(self.admin_token and token) and hmac.compare_digest(
            self.admin_token.encode(), token.encode())


def oauth_available() -> bool:
    """Hugging Face OAuth works only inside a Space with `hf_oauth: true`; elsewhere gradio
    would mock it with the local HF token (a Hub call), so we leave the login button out."""
    return os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))


def verified_user(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    """The identity a server vouches for: the OAuth username, or the `auth=` login."""
    if profile is not None:
        return profile.username
    return getattr(request, "username", None) or None


def annotator_name(typed: str | None, verified: str | None) -> str:
    """The verified identity wins over a typed name; raises when neither is usable."""
    name = verified or (typed or "").strip()
    if not name:
        raise gr.Error("Enter your name (or sign in with Hugging Face) to start labeling.")
    if len(name) > 64:
        raise gr.Error("Names are at most 64 characters; please use a shorter one.")
    return name


@dataclass(frozen=True)
class Session:
    """Per-browser-tab state. It lives in gr.State on the server; clients cannot set it."""

    annotator: str | None = None
    researcher: bool = False
    assignment_id: int | None = None  # the task on screen, None while none is open


def require_annotator(session: Session) -> str:
    if session.annotator is None:
        raise gr.Error("Sign in first: enter your name and press Start labeling.")
    return session.annotator


def require_researcher(session: Session) -> None:
    """Every researcher handler calls this first: the role lives in server-side state."""
    if not session.researcher:
        raise gr.Error("This needs the researcher role: sign in with the researcher token, or "
                       "with a Hugging Face account listed in RMLAB_RESEARCHERS.")
