"""ui.render: untrusted text becomes inert HTML/Markdown; the probe's card and feature table."""
from __future__ import annotations

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


