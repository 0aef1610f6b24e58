"""Roles and sign-in: who a session is, and whether it may use the researcher tools.

Sign-in modes (env RMLAB_SIGNIN; `SIGNIN_MODES`):
- `open`: a typed name identifies the annotator. For a local run; the default when no role
  is configured and the app is not on a Space with Hugging Face sign-in.
- `invite`: a researcher issues each annotator an invite (a secret token, shown once, stored
  only as its hash); signing in with it is the only way to label. The default when roles are
  configured.
- `oauth`: the Hugging Face account (the default on a Space with `hf_oauth: true`); invites
  work too, for scripts.
In `invite` and `oauth` modes a typed name never identifies anyone: the UI and the
`next_task` / `submit_label` endpoints need a credential, the invite token (a script sends it
in the `X-RMLab-Invite` header) or the verified account.

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

from labeling.limits import check_name


SIGNIN_ENV = "RMLAB_SIGNIN"
SIGNIN_MODES = {
    "open": "a typed name identifies the annotator (local runs)",
    "invite": "only a researcher's invite (or a verified account) identifies an annotator",
    "oauth": "the Hugging Face account (or an invite) identifies the annotator",
}
INVITE_HEADER = "x-rmlab-invite"  # how a script sends its invite token
NEEDS_CREDENTIAL = {
    "invite": "Sign in with your invite: open the invite link a researcher sent you, or paste its code. "
              "Scripts send the code in the X-RMLab-Invite header.",
    "oauth": "Sign in with Hugging Face (or an invite code). Scripts send an invite code in the "
             "X-RMLab-Invite header.",
}


@dataclass(frozen=True)
class Access:
    """Who may label as whom (the sign-in mode) and who may use the researcher handlers
    (dashboard, export, research tab)."""

    researchers: frozenset[str] = field(default_factory=frozenset, metadata={
        "help": "verified user names with the researcher role (env RMLAB_RESEARCHERS, comma-separated)"})
    admin_token: str | None = field(default=None, metadata={
        "help": "a shared secret that grants the researcher role at sign-in (env RMLAB_ADMIN_TOKEN)"})
    signin: str = field(default="open", metadata={
        "help": f"how annotators are identified (env {SIGNIN_ENV}): {', '.join(SIGNIN_MODES)}"})

    def __post_init__(self) -> None:
        if self.signin not in SIGNIN_MODES:
            raise ValueError(f"{SIGNIN_ENV}={self.signin!r}: use one of {', '.join(SIGNIN_MODES)}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Access:
        """Roles from RMLAB_RESEARCHERS / RMLAB_ADMIN_TOKEN; the sign-in mode from RMLAB_SIGNIN,
        else oauth on a Space with Hugging Face sign-in, else invite when a role is configured,
        else open."""
        env = os.environ if env is None else env
        names = frozenset(n.strip() for n in env.get("RMLAB_RESEARCHERS", "").split(",") if n.strip())
        token = env.get("RMLAB_ADMIN_TOKEN") or None
        default = "oauth" if oauth_available(env) else ("invite" if names or token else "open")
        return cls(researchers=names, admin_token=token, signin=(env.get(SIGNIN_ENV) or default).strip().lower())

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
        return bool(self.admin_token and isinstance(token, str) and token) and hmac.compare_digest(
            self.admin_token.encode(), token.encode("utf-8", "surrogatepass"))


def oauth_available(env: dict[str, str] | None = None) -> bool:
    """Hugging Face OAuth works only inside a Space with `hf_oauth: true`; elsewhere gradio
    would mock it with the local HF token (a Hub call), so we leave the login button out."""
    env = os.environ if env is None else env
    return env.get("SYSTEM") == "spaces" and bool(env.get("OAUTH_CLIENT_ID"))


def verified_user(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    """The identity a server vouches for: the OAuth username, or the `auth=` login."""
    if profile is not None:
        return profile.username
    return getattr(request, "username", None) or None


def annotator_name(typed: str | None, verified: str | None) -> str:
    """The verified identity wins over a typed name; raises when neither is usable."""
    name = verified or typed
    if name is None or isinstance(name, str) and not name.strip():
        raise gr.Error("Enter your name (or sign in with Hugging Face) to start labeling.")
    try:  # the store's rule (labeling.limits): length, no control or invisible characters
        return check_name(name, "Your name")
    except ValueError as err:
        raise gr.Error(f"{err}.") from err


def invite_header(request: gr.Request | None) -> str | None:
    """The invite token a script sent in the X-RMLab-Invite header, if any."""
    headers = getattr(request, "headers", None)
    return (headers.get(INVITE_HEADER) or None) if headers is not None else None


def identify(access: Access, store, typed: str | None, invite: str | None, request: gr.Request | None,
             profile: gr.OAuthProfile | None) -> tuple[str, bool]:
    """(the annotator a call is for, whether that identity is verified). In `open` mode the
    verified account wins over a typed name; otherwise a typed name counts for nothing and the
    call needs the verified account or a valid invite token (`invite`, else the header)."""
    verified = verified_user(request, profile)
    if access.signin == "open":
        return annotator_name(typed, verified), verified is not None
    if verified:
        return verified, True
    token = (invite.strip() if isinstance(invite, str) else invite) or invite_header(request)
    if not token:
        raise gr.Error(NEEDS_CREDENTIAL[access.signin])
    name = store.verify_invite(token)
    if name is None:
        raise gr.Error("This invite code is not valid (mistyped, replaced or revoked): ask a researcher for a new one.")
    return name, True


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
