"""Reward models: Bradley-Terry training, checkpoints, scoring, metrics and calibration.

Public API (nothing is imported or loaded until you import a submodule):
- rm.data.load_preferences(src, data_dir=None, split=None, max_pairs=None) -> datasets.Dataset
- rm.train.TrainConfig, rm.train.train(config, callback=None) -> Path
- rm.checkpoint.save_rm(model, tokenizer, dir, config, metrics, temperature), load_rm(path_or_id)
- rm.score.load_scorer(path | id | list) -> Scorer; Scorer.score(prompts, responses) -> Scores
- rm.evaluate.evaluate(EvalConfig) -> dict; rm.sweep.run_sweep(SweepConfig) -> DataFrame
- rm.metrics: accuracy, reward_gap, log_loss, brier, ece, reliability_table, fit_temperature
- rm.loss: bt_loss, center_loss; rm.model: RewardModel, POOLING
- rm.push.push(PushConfig) -> repo URL; rm.push.model_card(checkpoint, repo, reports) -> str
- rm.testing: tiny_backbone(dir), tiny_decoder(dir) for tests
CLIs: python -m rm.train | rm.evaluate | rm.score | rm.sweep | rm.push | rm.convert (each with --help).
"""
