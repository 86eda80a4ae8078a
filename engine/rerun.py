"""Recompute a stored run or sweep cell from its stored parameters, e.g. to get the trades of a
sweep cell that kept only its figures (`mmflow rerun RUN_ID`).

The data must still be what the run used: its content hash is checked first, and the config file
named in the run's params must still give the stored `config_hash`. The recomputed run keeps its
run id, kind and sweep, so storing it replaces the stored one (now with its trades).
"""

from __future__ import annotations

from pathlib import Path

from engine.data.source import InputError, open_data
from engine.params import ConfigError, config_hash, load_config
from engine.results.store import StoreError, read_run
from engine.run import Run
from engine.runner import backtest_security
from engine.types import Failure, SecurityResult


def rerun(store: str | Path, run_id: str, *, data: str | None = None) -> Run:
    """The stored run `run_id` computed again, with every trade."""
    stored = read_run(store, run_id)
    securities = sorted(
        [r.security for r in stored.results] + [f.security for f in stored.failures]
    )
    source = open_data(data or stored.data_source, securities=securities)
    if source.content_hash != stored.data_hash:
        raise StoreError(
            f"run {run_id} used data {stored.data_hash[:12]}… but {source.path} is now "
            f"{source.content_hash[:12]}…; give the original data with --data"
        )
    config_path = stored.params.get("config")
    overrides = stored.params.get("overrides") or {}
    config = load_config(config_path)
    if config_hash(config, overrides) != stored.config_hash:
        raise ConfigError(
            f"the config file {config_path} changed since run {run_id}; restore it to rerun"
        )
    run = Run.start(
        kind=stored.kind,
        strategy=stored.strategy,
        source=source,
        config_path=config_path,
        config=config,
        overrides=overrides,
        run_id=run_id,
        sweep_id=stored.sweep_id,
        flow_run_id=stored.flow_run_id,
    )
    results: list[SecurityResult] = []
    failures: list[Failure] = []
    for security in source.securities:
        try:
            results.append(backtest_security(source, security, stored.strategy, config, overrides))
        except InputError as exc:
            failures.append(Failure(security, "InputError", str(exc)))
    return run.finish(results, failures)
