"""ui.render: untrusted text becomes inert HTML/Markdown; the probe's card and feature table."""
from __future__ import annotations

from analysis.compare import feature_diff
from ui.render import feature_html, markdown_literal, render_markdown, score_card


def test_render_markdown_shows_raw_html_as_text():
    out = render_markdown('**bold** <script>alert(1)</script> <img src=x onerror="alert(1)">')
    assert "<strong>bold</strong>" in out
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_render_markdown_keeps_code_and_drops_script_links():
    out = render_markdown("```python\nprint('<b>')\n\nx = 1\n```\n\n[click](javascript:alert(1)) [ok](https://example.org)")
    assert "print(&#39;&lt;b&gt;&#39;)\n\nx = 1" in out or "print('&lt;b&gt;')\n\nx = 1" in out
    assert 'href="javascript' not in out  # markdown-it leaves such a link as plain text
    assert 'href="https://example.org"' in out and "nofollow" in out


def test_untrusted_names_stay_literal():
    assert markdown_literal("**x** [a](javascript:1) <b> $y$") == \
        r"\*\*x\*\* \[a\]\(javascript:1\) &lt;b&gt; \$y\$"


def test_score_card_shows_spread_only_for_ensembles():
    single = {"score_a": 1.0, "score_b": -0.5, "p_a_better": 0.82, "temperature": 1.0, "members": 1, "model": "m"}
    assert "±" not in score_card(single) and "+1.000" in score_card(single) and "0.82" in score_card(single)
    ens = single | {"members": 3, "std_a": 0.25, "std_b": 0.5}
    assert "± 0.250" in score_card(ens) and "ensemble of 3" in score_card(ens)
    assert "<script>" not in score_card(single | {"model": "<script>"})


def test_feature_html_highlights_differences():
    diff = feature_diff("Is 2 + 2 = 5?", "Great question! Yes, it is 5.", "No, it is 4.")
    html = feature_html(diff)
    assert '<tr class="rm-diff"><td title=' in html
    assert html.count('class="rm-diff"') == int((diff["A − B"].abs() > 1e-9).sum())
