"""mmflow: market-making backtests over Bloomberg tick data, orchestrated by Prefect."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mmflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
