"""The Label tab: sign-in, guidelines and the task card, plus the two named endpoints a
script labels with (`next_task`, `submit_label`). Every click is one event: the label (or
skip, or undo) and the next task come back together."""
from __future__ import annotations

from dataclasses import dataclass, replace

import gradio as gr

from labeling.annotate import record_label, serve_task
from labeling.vocab import CHOICE_LABELS, DEFAULT_STRENGTH, STRENGTHS, TAGS
from ui.auth import Session, identify, oauth_available, require_annotator
from ui.context import App, Shell, bind
from ui.errors import shown
from ui.render import progress_line, text_panel

# Key -> element id of the button it clicks; the button captions and the page script read this.
SHORTCUTS = {
    "1": "rm-choice-A", "a": "rm-choice-A",
    "2": "rm-choice-B", "b": "rm-choice-B",
    "3": "rm-choice-tie", "t": "rm-choice-tie",
    "4": "rm-choice-both_bad", "x": "rm-choice-both_bad",
    "s": "rm-skip", "u": "rm-undo",
}

GUIDELINES = """\
**Your job:** read the prompt, read both responses, and say which one a careful expert would
rather send to the person who asked.

- **Correctness first.** A confident wrong answer is worse than a short correct one. If the
  prompt asserts something false, the better response says so politely; agreeing with a
  false claim is a serious flaw (tag it *agrees with a false claim*).
- **Then helpfulness:** does it answer what was asked, at a sensible length, without padding?
- **Judge the content, not the position.** Left/right order is random.
- **Tie** when they are equally good; **Both bad** when neither is acceptable.
- **Strength:** *slightly*, *clearly* or *much* better. Pick it before you choose.
- Rationale and tags are optional but help researchers. **Skip** if you cannot judge a task.

Keyboard: **1**/**A** A better · **2**/**B** B better · **3**/**T** tie · **4**/**X** both bad ·
**S** skip · **U** undo last. Keys do nothing while you type in the rationale box.
"""


@dataclass
class LabelTab:
    signin_row: gr.Row
    name: gr.Textbox  # open sign-in only
    invite: gr.Textbox  # invite and oauth sign-in; an invite link (?invite=CODE) fills it
    token: gr.Textbox
    signin: gr.Button
    status: gr.Markdown
    guidelines: gr.Accordion
    card: gr.Column
    prompt: gr.HTML
    left: gr.HTML
    right: gr.HTML
    strength: gr.Radio
    tags: gr.CheckboxGroup
    rationale: gr.Textbox
    choices: dict[str, gr.Button]
    skip: gr.Button
    undo: gr.Button
    finished: gr.Markdown


def build(app: App) -> LabelTab:
    """Sign-in, guidelines and the task card (hidden until there is a task)."""
    typed = app.access.signin == "open"
    with gr.Row(equal_height=True) as signin_row:  # hidden once signed in; reload to switch
        name = gr.Textbox(label="Your name", placeholder="e.g. alice", max_lines=1, scale=3, elem_id="rm-name",
                          visible=typed)
        invite = gr.Textbox("", label="Invite code (from your invite link)", type="password", max_lines=1, scale=3,
                            elem_id="rm-invite", visible=not typed)
        token = gr.Textbox(label="Researcher token (optional)", type="password", max_lines=1, scale=2,
                           visible=app.access.admin_token is not None, elem_id="rm-token")
        with gr.Column(scale=1, min_width=160):
            signin = gr.Button("Start labeling", variant="primary", elem_id="rm-signin")
            if oauth_available():
                gr.LoginButton(size="md")
    status = gr.Markdown("Enter your name to start." if typed else "Sign in to start.", elem_id="rm-status")
    with gr.Accordion("Guidelines", open=True) as guidelines:
        gr.Markdown(GUIDELINES)
    with gr.Column(visible=False) as card:
        prompt = gr.HTML(elem_id="rm-prompt", js_on_load=None)
        with gr.Row():
            left = gr.HTML(elem_id="rm-left", js_on_load=None)
            right = gr.HTML(elem_id="rm-right", js_on_load=None)
        with gr.Row():
            strength = gr.Radio(list(STRENGTHS), value=DEFAULT_STRENGTH, label="How much better?",
                                scale=3, min_width=300, elem_id="rm-strength")
            tags = gr.CheckboxGroup(list(TAGS), label="Tags (optional)", scale=5, elem_id="rm-tags")
        rationale = gr.Textbox(label="Rationale (optional)", lines=1, max_lines=4,
                               placeholder="Why? One line is plenty.", elem_id="rm-rationale")
        digit = {button: key for key, button in SHORTCUTS.items() if key.isdigit()}
        with gr.Row(elem_id="rm-choices"):
            choices = {c: gr.Button(f"{text}  [{digit['rm-choice-' + c]}]",
                                    variant="primary" if c in ("A", "B") else "secondary",
                                    elem_id=f"rm-choice-{c}") for c, text in CHOICE_LABELS.items()}
        with gr.Row():
            skip = gr.Button("Skip  [S]", size="sm", elem_id="rm-skip")
            undo = gr.Button("Undo last  [U]", size="sm", elem_id="rm-undo")
    finished = gr.Markdown(visible=False, elem_id="rm-finished")
    return LabelTab(signin_row, name, invite, token, signin, status, guidelines, card, prompt, left, right,
                    strength, tags, rationale, choices, skip, undo, finished)


def finished_note(progress: dict) -> str:
    if progress["remaining"]:  # e.g. only the other pairing of the triad just shown is left
        return ("### Nothing to show right now\nYour remaining tasks cannot be served back to "
                "back; press Start labeling again in a little while.")
    return "### All done, thank you!\nNo tasks are left for you right now."


def task_card(app: App, tab: LabelTab, shell: Shell, sess: Session, task: dict | None = None) -> dict:
    """Show `task` (default: serve the annotator's next one), or the finished note."""
    task = task or serve_task(app.store, require_annotator(sess))
    shown_task = task["assignment_id"] is not None
    return {shell.session: replace(sess, assignment_id=task["assignment_id"]),
            tab.status: progress_line(sess.annotator, task["progress"]),
            tab.card: gr.Column(visible=shown_task),
            tab.finished: gr.Markdown(finished_note(task["progress"]), visible=not shown_task),
            tab.prompt: text_panel("Prompt", task["prompt"], "rm-prompt"),
            tab.left: text_panel("Response A", task["response_a"]),
            tab.right: text_panel("Response B", task["response_b"]),
            tab.strength: DEFAULT_STRENGTH, tab.tags: [], tab.rationale: ""}


def sign_in(app: App, tab: LabelTab, shell: Shell, name: str, token: str, sess: Session, request: gr.Request,
            profile: gr.OAuthProfile | None, invite: str = "") -> dict:
    """Start a session. Open sign-in: a name (a signed-in Hugging Face user's own name wins);
    otherwise an invite code or the Hugging Face account. `token`: the optional researcher token."""
    annotator, verified = identify(app.access, app.store, name, invite, request, profile)
    researcher = app.access.grants(annotator if verified else None, token)
    sess = Session(annotator=annotator, researcher=researcher)
    return {tab.signin_row: gr.Row(visible=False), tab.guidelines: gr.Accordion(open=False),
            **{t: gr.Tab(visible=researcher) for t in shell.researcher_tabs},
            **task_card(app, tab, shell, sess)}


def submit(app: App, tab: LabelTab, shell: Shell, choice: str, sess: Session, strength: str,
           rationale: str, tags: list[str]) -> dict:
    """Store the label of the task on screen, then show the next task."""
    if sess.assignment_id is None:  # a key pressed again while the next task loads
        return {shell.session: gr.skip()}
    with shown("The label was not stored"):
        stored = record_label(app.store, require_annotator(sess), sess.assignment_id, choice, strength, rationale, tags)
    return task_card(app, tab, shell, sess, stored["next"])


def skip(app: App, tab: LabelTab, shell: Shell, sess: Session) -> dict:
    if sess.assignment_id is not None:
        with shown("The task was not skipped"):
            app.store.skip(sess.assignment_id, require_annotator(sess))
    return task_card(app, tab, shell, sess)


def undo(app: App, tab: LabelTab, shell: Shell, sess: Session) -> dict:
    with shown("Nothing was undone"):
        undone = app.store.undo_last(require_annotator(sess))
    if undone is None:
        raise gr.Error("Nothing to undo yet.")
    return task_card(app, tab, shell, sess)


def next_task(app: App, annotator: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
    """Serve the annotator's next task; an open (served, unlabelled) task is served again.

    Parameters:
        annotator: the annotator's name with open sign-in (a signed-in Hugging Face user's own name wins); ignored with invite or oauth sign-in, where the X-RMLab-Invite header (or the account) identifies the caller
    Returns:
        {"assignment_id": int or None when nothing is left, "prompt": str,
         "response_a": str, "response_b": str (as shown: A left, B right),
         "progress": {"done": int, "skipped": int, "remaining": int}}
    """
    return serve_task(app.store, identify(app.access, app.store, annotator, None, request, profile)[0])


def submit_label(app: App, annotator: str, assignment_id: int, choice: str, strength: str = DEFAULT_STRENGTH,
                 rationale: str = "", tags: list[str] | None = None,
                 request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> dict:
    """Label an assignment from next_task; durable on return, and a repeat stores nothing new.

    Parameters:
        annotator: as for next_task
        assignment_id: the assignment_id from next_task
        choice: "A", "B", "tie" or "both_bad" (A = response_a)
        strength: "slightly", "clearly" or "much" better (default "clearly")
        rationale: optional free text
        tags: optional, any of "agrees with a false claim", "too long", "hedges", "factually wrong", "unsafe", "off-topic"
    Returns:
        {"assignment_id": int, "label_id": int (the same for a repeated submit),
         "progress": {"done": int, "skipped": int, "remaining": int},
         "next": the next task, as next_task returns it (so a script needs one call per label)}
    """
    who = identify(app.access, app.store, annotator, None, request, profile)[0]
    with shown("The label was not stored"):
        return record_label(app.store, who, assignment_id, choice, strength, rationale, tags)


def invite_from_link(request: gr.Request) -> str:
    """An invite link is the app's URL with ?invite=CODE: it fills the invite box."""
    return gr.skip() if request is None else request.query_params.get("invite") or gr.skip()


def wire(app: App, tab: LabelTab, shell: Shell) -> None:
    card = [shell.session, tab.status, tab.card, tab.finished, tab.prompt, tab.left, tab.right,
            tab.strength, tab.tags, tab.rationale]
    ui_only = {"api_visibility": "private"}
    gr.on([tab.signin.click, tab.name.submit, tab.invite.submit, tab.token.submit], bind(sign_in, app, tab, shell),
          [tab.name, tab.token, shell.session, tab.invite],
          [*card, tab.signin_row, tab.guidelines, *shell.researcher_tabs], api_name="sign_in")
    shell.page.load(invite_from_link, None, tab.invite, **ui_only)
    for choice, button in tab.choices.items():
        button.click(bind(submit, app, tab, shell, choice), [shell.session, tab.strength, tab.rationale, tab.tags],
                     card, **ui_only)
    tab.skip.click(bind(skip, app, tab, shell), shell.session, card, **ui_only)
    tab.undo.click(bind(undo, app, tab, shell), shell.session, card, **ui_only)
    gr.api(bind(next_task, app), api_name="next_task")
    gr.api(bind(submit_label, app), api_name="submit_label")
