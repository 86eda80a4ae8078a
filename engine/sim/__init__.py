"""The compiled simulation (SPEC §2-§4): the one-level book, the reference fill model, quoting,
average-cost accounting, the trading session, and `strategies/` (one file per strategy), driven
over one security's event arrays by `backtest.simulate`.

Owns: everything that moves a quote, a fill, a position or realized P&L. Pure and deterministic;
no I/O. Must not import `engine.data` or `engine.results` (nor prefect): it takes arrays and
parameters and returns fill records and the final state.
"""
