"""Input (SPEC §1): reading Bloomberg workbooks (`workbook`), the Parquet cache with its manifest
(`parquet`), the data source every runner loads a security from (`source`), and the synthetic
sample workbook (`sample`).

Owns: turning files into normalised `Events` with their row counts, and every rule about bad
input (`InputError` names the file, sheet and row). Must not import `engine.sim` or
`engine.results` (nor prefect).
"""
