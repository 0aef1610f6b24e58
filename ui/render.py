"""Safe rendering of untrusted text (task prompts and responses, names, model ids) into the
HTML and Markdown the UI shows. Nothing typed by a user or written by a model reaches the page
as markup: Markdown is rendered with raw HTML off, then cleaned with an allow-list.
"""
from __future__ import annotations

import html
import re

import nh3
import pandas as pd
from markdown_it import MarkdownIt

# Untrusted model text: raw HTML is shown as text (html=False), then the rendered HTML is
# cleaned again with an allow-list (no images: they would load remote URLs).
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_ALLOWED_TAGS = {"p", "br", "hr", "pre", "code", "em", "strong", "del", "s", "blockquote",
                 "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead",
                 "tbody", "tr", "th", "td"}


def render_markdown(text: str) -> str:
    """Markdown of untrusted text -> safe HTML in a scrollable box."""
    body = nh3.clean(_MD.render(text), tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return f'<div class="rm-text">{body}</div>'


def code_span(text: str) -> str:
    """Untrusted text as an inline Markdown code span (shown verbatim; a backtick would end it)."""
    return "`" + text.replace("`", "'") + "`"


def markdown_literal(text: str) -> str:
    """Untrusted text (a typed name) inside our own Markdown: no markup, no HTML."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~$])", r"\\\1", html.escape(text, quote=False))


def text_panel(title: str, text: str, css_class: str = "") -> str:
    return f'<div class="{css_class}"><div class="rm-title">{title}</div>{render_markdown(text)}</div>'


def progress_line(annotator: str, progress: dict) -> str:
    return (f"Signed in as **{markdown_literal(annotator)}** · **{progress['done']}** labelled"
            f" · **{progress['remaining']}** to go")


_CARD = """
<div class="rm-card"><div class="rm-side"><div class="rm-k">Reward A</div><div class="rm-v">{a}</div></div>
<div class="rm-mid"><div class="rm-k">P(A &gt; B)</div><div class="rm-v">{p}</div>
<div class="rm-bar"><div style="width:{pct:.1f}%"></div></div><div class="rm-small">{detail}</div></div>
<div class="rm-side"><div class="rm-k">Reward B</div><div class="rm-v">{b}</div></div></div>
"""


def score_card(result: dict | None, message: str = "") -> str:
    """The probe's headline: both rewards (± ensemble spread) and the calibrated P(A > B)."""
    if result is None:
        return f'<div class="rm-card rm-empty">{html.escape(message)}</div>'
    spread = lambda side: f' <span class="rm-pm">± {result[f"std_{side}"]:.3f}</span>' \
        if f"std_{side}" in result else ""  # noqa: E731
    members = f"ensemble of {result['members']}" if result["members"] > 1 else "single model"
    detail = f"T = {result['temperature']:.2f} · {members} · {html.escape(result['model'])}"
    return _CARD.format(a=f"{result['score_a']:+.3f}{spread('a')}", b=f"{result['score_b']:+.3f}{spread('b')}",
                        p=f"{result['p_a_better']:.2f}", pct=100 * result["p_a_better"], detail=detail)


def feature_html(diff: pd.DataFrame) -> str:
    """The feature table as HTML; rows where A and B differ are highlighted, the larger side bold."""
    from analysis.features import FEATURES

    num = lambda x: f"{x:.0f}" if float(x).is_integer() else f"{x:.2f}"  # noqa: E731
    rows = []
    for r in diff.itertuples(index=False):
        a, b, d = r[1], r[2], r[3]
        cls = ' class="rm-diff"' if abs(d) > 1e-9 else ""
        cell = lambda x, big: f"<td><b>{num(x)}</b></td>" if big and cls else f"<td>{num(x)}</td>"  # noqa: E731
        doc = html.escape(FEATURES[r[0]].doc, quote=True)
        rows.append(f'<tr{cls}><td title="{doc}">{r[0]}</td>{cell(a, a > b)}{cell(b, b > a)}'
                    f"<td>{'+' if d > 0 else ''}{num(d)}</td></tr>")
    return ('<table class="rm-features"><thead><tr><th>feature</th><th>A</th><th>B</th><th>A − B</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>")
