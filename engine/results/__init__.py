"""What a backtest produced, and where it goes: per-security summaries (`summary`), the metrics of
SPEC §5.3 (`metrics`), comparisons of stored runs (`compare`), the DuckDB store (`store/`: frozen
migrations, the single writer, typed readers, views) and the HTML reports (`report/`).

Owns: every figure a user reads and every table it is stored in. May read `engine.sim`'s fill
records; must not import `engine.data` (input) nor prefect.
"""
