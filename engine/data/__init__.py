"""Input (SPEC §1): reading Bloomberg workbooks (`workbook`, after `bounds` has checked that they
fit in memory), the number rules every row must pass (`rules`), column conversions (`columns`),
the Parquet cache with its manifest (`parquet`), the data source every runner loads a security
from (`source`), and the synthetic sample workbook (`sample`).

Owns: turning files into normalised `Events` with their row counts, and every rule about bad
input (`errors.InputError` names the file, sheet and row). Must not import `engine.sim` or
`engine.results` (nor prefect).
"""
