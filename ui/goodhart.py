"""The Goodhart tab: best-of-n and RL against the policy LM, proxy and gold reward against √KL,
with the fits, the sweet spots and the mitigations side by side. Best-of-n samples and finished
RL runs are cached under the runs folder, so running a setting again only re-plots it.

`/goodhart` and `/rl` take their settings as one dict of `analysis.goodhart.GoodhartConfig` or
`analysis.rl.RLConfig` fields:

    client.predict({"gold": "truthful", "prompts": "mixed", "n_prompts": 8, "n": 16},
                   "", ["my-rm"], api_name="/goodhart")
    client.predict({"gold": "truthful", "steps": 30, "kl_coef": 0.05}, "", ["my-rm"], api_name="/rl")
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm.cli import from_dict
from ui.auth import Session, require_researcher
from ui.context import HEAVY_CONCURRENCY, UI_ONLY, App, bind, collect_js
from ui.errors import shown
from ui.models import Selector, cached_scorer, model_sources, selected_models
from ui.render import code_span

INTRO = ("Best-of-n against the policy LM. The **proxy** is the reward model chosen above; the **gold** scorer "
         "is a checker (truthful: states the true value and does not endorse a false claim; arithmetic: states the "
         "true value) or another RM. Samples are cached in `runs/goodhart/`, so running again with the same prompts "
         "and sampling settings only re-scores and re-plots (e.g. a single RM against an ensemble).")
RL_INTRO = ("**RL steps:** RLOO with LoRA adapters against the proxy, with a sequence-level KL penalty to the "
            "reference policy; proxy, gold and the exact KL are measured on held-out prompts. Each run is kept, so "
            "runs with another KL coefficient, an honesty penalty γ or an ensemble proxy (mean − λ·std) are drawn "
            "side by side.")
CHECKERS = [("truthful checker", "truthful"), ("arithmetic checker", "arithmetic")]
PROMPTS = ["mixed", "plain", "claims", "arithmetic", "seed"]


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
        gold = gr.Dropdown([*CHECKERS, *checkpoints], value="truthful", allow_custom_value=True,
                           label="Gold scorer", scale=2)
        ensemble = gr.Dropdown(checkpoints, multiselect=True, allow_custom_value=True, scale=3,
                               label="Ensemble for mean − λ·std (optional; an ensemble proxy is used otherwise)")
        prompts = gr.Dropdown(PROMPTS, value="mixed", label="Prompts", scale=1)
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
    selector.lists.extend([(gold, CHECKERS), (ensemble, [])])
    return GoodhartTab(gold, ensemble, prompts, n_prompts, n, max_new_tokens, lam, beta_kl, gr.JSON(visible=False),
                       run, summary, plot, fits)


def fits_table(result) -> pd.DataFrame:
    rows = [{"selector": name, "α": round(fit.alpha, 4), "β": round(fit.beta, 4), "R²": round(fit.r2, 3),
             "n* (fit)": None if fit.n_star is None else round(fit.n_star, 1),
             "n* (measured)": result.n_star_empirical[name]} for name, fit in result.fits.items()]
    rows += [{"selector": f"{name} (skipped: {why})"} for name, why in result.skipped.items()]
    return pd.DataFrame(rows)


def gold_scorer_for(app: App, gold: str):
    """A registered checker by name, else a reward model (a checkpoint name, folder or Hub id)."""
    from analysis.gold import GOLD_CHECKERS

    return GOLD_CHECKERS[gold]() if gold in GOLD_CHECKERS else cached_scorer(model_sources(gold, app.runs))


def config_from(app: App, options: dict, policy_spec: str, models: list[str]):
    """GoodhartConfig from named options; selected names become checkpoint folders."""
    from analysis import goodhart as gh

    options = {k: v for k, v in dict(options or {}).items() if v not in ("", None, [])}
    gold = options.pop("gold", None)
    if not gold:
        raise ValueError("choose a gold scorer: the arithmetic checker or a reward model")
    ensemble = model_sources(options.pop("ensemble", None), app.runs) or None
    return from_dict(gh.GoodhartConfig, {**options, "proxy": model_sources(models, app.runs), "gold": [gold],
                                         "ensemble": ensemble, "policy": (policy_spec or "").strip() or None,
                                         "cache_dir": str(app.runs / "goodhart"), "out": None})


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
        gold_scorer = gold_scorer_for(app, gold)
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


# ----------------------------------------------------------------------------- RL steps


@dataclass
class RLPanel:
    gold: gr.Dropdown
    prompts: gr.Dropdown
    steps: gr.Number
    kl_coef: gr.Number
    honesty_gamma: gr.Number
    lam: gr.Number
    max_new_tokens: gr.Number
    options: gr.JSON  # hidden: the settings above as one dict
    run: gr.Button
    stop: gr.Button
    clear: gr.Button
    status: gr.Markdown
    plot: gr.Plot
    table: gr.Dataframe
    state: gr.State  # this session's TrainingRun (the Stop flag)
    history: gr.State  # this session's finished runs, label -> RLResult, drawn side by side

    def option_inputs(self) -> dict[str, gr.Component]:
        return {name: getattr(self, name) for name in
                ("gold", "prompts", "steps", "kl_coef", "honesty_gamma", "lam", "max_new_tokens")}


def build_rl(app: App, selector: Selector) -> RLPanel:
    from rm.background import TrainingRun

    gr.Markdown(RL_INTRO)
    with gr.Row(equal_height=True):
        gold = gr.Dropdown(CHECKERS, value="truthful", allow_custom_value=True, label="Gold scorer", scale=2)
        prompts = gr.Dropdown(PROMPTS, value="mixed", label="Prompts", scale=1)
        steps = gr.Number(30, label="Steps", precision=0, minimum=1, maximum=1000)
        kl_coef = gr.Number(0.05, label="KL coefficient β", minimum=0)
        honesty_gamma = gr.Number(0.0, label="Honesty penalty γ", minimum=0)
        lam = gr.Number(0.0, label="λ (ensemble proxy)", minimum=0)
        max_new_tokens = gr.Number(24, label="Max new tokens", precision=0, minimum=4, maximum=256)
    with gr.Row():
        run = gr.Button("Run RL", variant="primary", elem_id="rm-rl-run")
        stop = gr.Button("Stop", variant="stop", elem_id="rm-rl-stop")
        clear = gr.Button("Clear the comparison", elem_id="rm-rl-clear")
    status = gr.Markdown(elem_id="rm-rl-status")
    plot = gr.Plot(show_label=False, elem_id="rm-rl-plot")
    table = gr.Dataframe(interactive=False, label="Runs side by side: gold at the start, at its peak and at the end",
                         elem_id="rm-rl-table")
    selector.lists.append((gold, CHECKERS))
    return RLPanel(gold, prompts, steps, kl_coef, honesty_gamma, lam, max_new_tokens, gr.JSON(visible=False), run,
                   stop, clear, status, plot, table, gr.State(TrainingRun()), gr.State({}))


def rl_config(app: App, options: dict, policy_spec: str, models: list[str]):
    """RLConfig from named options; its run folder is under the app's runs folder."""
    from dataclasses import replace

    from analysis.rl import RLConfig

    options = {k: v for k, v in dict(options or {}).items() if v not in ("", None, [])}
    gold = options.pop("gold", None) or "truthful"
    config = from_dict(RLConfig, {**options, "proxy": model_sources(models, app.runs), "gold": [gold],
                                  "policy": (policy_spec or "").strip() or None, "progress": False})
    return replace(config, out=str(app.runs / "rl" / config.key()))


def run_label(config, models: list[str]) -> str:
    """A run's name in the comparison: its proxy and the settings a mitigation changes."""
    extras = [f"γ={config.honesty_gamma:g}"] * bool(config.honesty_gamma) + [f"λ={config.lam:g}"] * bool(config.lam)
    return ", ".join([f"{'+'.join(models) or 'proxy'}: β={config.kl_coef:g}", *extras])


def rl(app: App, tab: RLPanel, options: dict, policy_spec: str, models: list[str], run, history: dict,
       sess: Session, progress=gr.Progress()) -> dict:
    """RL against the proxy (`models`); `options`: analysis.rl.RLConfig fields by name (gold, prompts,
    steps, kl_coef, honesty_gamma, lam, max_new_tokens, ...). Finished runs are drawn side by side."""
    from analysis.mitigations import compare_runs
    from analysis.rl import plot_rl, train_rl
    from ui.probe import load_policy_lm

    require_researcher(sess)
    with shown("The RL run failed", TypeError):
        config = rl_config(app, options, policy_spec, models)
        proxy, gold = cached_scorer(config.proxy), gold_scorer_for(app, config.gold[0])
        policy = load_policy_lm(policy_spec)
        with run.active():
            result = train_rl(config, proxy, gold, policy, stop=lambda: run.stop,
                              progress=lambda step, total, record: progress((step, total), desc="RL", unit="steps"))
    history = {**history, run_label(config, selected_models(models)): result}
    note = " (read from the run folder)" if result.cache_hit else " (stopped early)" if result.stopped else ""
    return {tab.status: f"Best gold at step {result.step_star} of {int(result.curve.step.max())}{note}: "
                        f"{code_span(result.out)}",
            tab.plot: plot_rl(history), tab.table: compare_runs(history).round(3), tab.history: history}


def stop_rl(app: App, tab: RLPanel, run, sess: Session) -> dict:
    """Stop this session's RL run after its current step (with a last evaluation)."""
    require_researcher(sess)
    if not run.running:
        raise gr.Error("Nothing is running in this session: press Run RL first.")
    run.stop = True
    return {tab.status: "Stopping after the current step…"}


def clear_rl(app: App, tab: RLPanel, sess: Session) -> dict:
    require_researcher(sess)
    return {tab.history: {}, tab.plot: None, tab.table: None, tab.status: "Comparison cleared."}


def wire_rl(app: App, tab: RLPanel, selector: Selector, session: gr.State) -> None:
    outputs = [tab.status, tab.plot, tab.table, tab.history]
    tab.run.click(None, list(tab.option_inputs().values()), tab.options, js=collect_js(list(tab.option_inputs())),
                  **UI_ONLY).then(
        bind(rl, app, tab), [tab.options, selector.policy, selector.models, tab.state, tab.history, session],
        outputs, api_name="rl", **HEAVY_CONCURRENCY)
    tab.stop.click(bind(stop_rl, app, tab), [tab.state, session], tab.status, api_name="stop_rl")
    tab.clear.click(bind(clear_rl, app, tab), session, outputs, **UI_ONLY)
