"""The Goodhart tab: best-of-n against the policy LM, proxy and gold reward against √KL, with
the fit, the sweet spot and the mitigating selectors on one plot. Samples are cached, so a
second run with the same prompts and sampling settings only re-scores and re-plots.

`/goodhart` takes its settings as one dict of `analysis.goodhart.GoodhartConfig` fields:

    client.predict({"gold": "arithmetic", "prompts": "arithmetic", "n_prompts": 8, "n": 16},
                   "", ["my-rm"], api_name="/goodhart")
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ui.auth import Session, require_researcher
from ui.context import HEAVY_CONCURRENCY, UI_ONLY, App, bind, collect_js
from ui.errors import shown
from ui.models import Selector, cached_scorer, model_sources
from ui.render import code_span

INTRO = ("Best-of-n against the policy LM. The **proxy** is the reward model chosen above; the **gold** scorer "
         "is the arithmetic checker (for arithmetic prompts) or another RM. Samples are cached in "
         "`runs/goodhart/`, so running again with the same prompts and sampling settings only re-scores and "
         "re-plots (e.g. a single RM against an ensemble).")


@dataclass
class GoodhartTab:
    gold: gr.Dropdown
    ensemble: gr.Dropdown
    prompts: gr.Dropdown
    n_prompts: gr.Number
    n: gr.Number
    max_new_tokens: gr.Number
    lam: gr.Number
    beta_kl: gr.Number
    options: gr.JSON  # hidden: the settings above as one dict, collected in the browser
    run: gr.Button
    summary: gr.Markdown
    plot: gr.Plot
    fits: gr.Dataframe

    def option_inputs(self) -> dict[str, gr.Component]:
        return {name: getattr(self, name) for name in
                ("gold", "ensemble", "prompts", "n_prompts", "n", "max_new_tokens", "lam", "beta_kl")}


def build(app: App, selector: Selector) -> GoodhartTab:
    from rm.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(app.runs)
    gr.Markdown(INTRO)
    with gr.Row(equal_height=True):
        gold = gr.Dropdown([("arithmetic checker", "arithmetic"), *checkpoints], value="arithmetic",
                           allow_custom_value=True, label="Gold scorer", scale=2)
        ensemble = gr.Dropdown(checkpoints, multiselect=True, allow_custom_value=True, scale=3,
                               label="Ensemble for mean − λ·std (optional; an ensemble proxy is used otherwise)")
        prompts = gr.Dropdown(["arithmetic", "seed"], value="arithmetic", label="Prompts", scale=1)
    with gr.Row(equal_height=True):
        n_prompts = gr.Number(8, label="Prompts", precision=0, minimum=1, maximum=256)
        n = gr.Number(16, label="Samples per prompt (N)", precision=0, minimum=2, maximum=1024)
        max_new_tokens = gr.Number(48, label="Max new tokens", precision=0, minimum=4, maximum=512)
        lam = gr.Number(1.0, label="λ (conservative)")
        beta_kl = gr.Number(0.5, label="β (KL-penalised)")
        run = gr.Button("Run / re-plot", variant="primary", elem_id="rm-goodhart-run")
    summary = gr.Markdown(elem_id="rm-goodhart-summary")
    plot = gr.Plot(show_label=False, elem_id="rm-goodhart-plot")
    fits = gr.Dataframe(interactive=False, label="Fits gold − gold(n=1) = d(α − βd), d = √KL; sweet spot d* = α/2β")
    selector.lists.extend([(gold, [("arithmetic checker", "arithmetic")]), (ensemble, [])])
    return GoodhartTab(gold, ensemble, prompts, n_prompts, n, max_new_tokens, lam, beta_kl, gr.JSON(visible=False),
                       run, summary, plot, fits)


def fits_table(result) -> pd.DataFrame:
    rows = [{"selector": name, "α": round(fit.alpha, 4), "β": round(fit.beta, 4), "R²": round(fit.r2, 3),
             "n* (fit)": None if fit.n_star is None else round(fit.n_star, 1),
             "n* (measured)": result.n_star_empirical[name]} for name, fit in result.fits.items()]
    rows += [{"selector": f"{name} (skipped: {why})"} for name, why in result.skipped.items()]
    return pd.DataFrame(rows)


def config_from(app: App, options: dict, policy_spec: str, models: list[str]):
    """GoodhartConfig from named options; selected names become checkpoint folders."""
    from analysis import goodhart as gh

    options = {k: v for k, v in dict(options or {}).items() if v not in ("", None, [])}
    gold = options.pop("gold", None)
    if not gold:
        raise ValueError("choose a gold scorer: the arithmetic checker or a reward model")
    ensemble = model_sources(options.pop("ensemble", None), app.runs) or None
    return gh.GoodhartConfig(proxy=model_sources(models, app.runs), gold=[gold], ensemble=ensemble,
                             policy=(policy_spec or "").strip() or None, cache_dir=str(app.runs / "goodhart"),
                             out=None, **options)


def goodhart(app: App, tab: GoodhartTab, options: dict, policy_spec: str, models: list[str], sess: Session,
             progress=gr.Progress()) -> dict:
    """Best-of-n curves. `options`: analysis.goodhart.GoodhartConfig fields by name (gold, ensemble,
    prompts, n_prompts, n, max_new_tokens, lam, beta_kl, ...); `models`: the proxy RM(s)."""
    from analysis import goodhart as gh

    require_researcher(sess)
    with shown("The best-of-n run failed", TypeError):
        config = config_from(app, options, policy_spec, models)
        proxy = cached_scorer(config.proxy)
        gold = config.gold[0]
        gold_scorer = gh.GOLD_CHECKERS[gold]() if gold in gh.GOLD_CHECKERS else cached_scorer(model_sources(gold, app.runs))
        ens = cached_scorer(config.ensemble) if config.ensemble else None
        progress(0.01, desc="Sampling from the policy (or reading the cache)")
        result, report = gh.run(config, proxy=proxy, gold=gold_scorer, ensemble=ens,
                                progress=lambda done, total: progress((done, total), desc="Sampling", unit="samples"))
    cache = "read from the cache" if report["cache_hit"] else "sampled and cached"
    return {tab.summary: f"{report['n_prompts']} prompts × N={report['n_samples']} samples ({cache}: "
                         f"{code_span(report['samples_cache'])})",
            tab.plot: gh.plot_goodhart(result), tab.fits: fits_table(result)}


def wire(app: App, tab: GoodhartTab, selector: Selector, session: gr.State) -> None:
    tab.run.click(None, list(tab.option_inputs().values()), tab.options, js=collect_js(list(tab.option_inputs())),
                  **UI_ONLY).then(
        bind(goodhart, app, tab), [tab.options, selector.policy, selector.models, session],
        [tab.summary, tab.plot, tab.fits], api_name="goodhart", **HEAVY_CONCURRENCY)
