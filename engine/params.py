"""Strategy parameters: frozen dataclasses with the SPEC §4.1 defaults, the reference JSON config
shape (per-security objects), `--set key=value` overrides, and validation with "did you mean"."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message says which key and what to do."""


# The fee parameters (ANALYTICS.md A11) must be finite; a negative maker fee is a rebate.
FEE_PARAMS = ("maker_fee_bps", "fee_per_fill")
SIGNED_PARAMS = frozenset({"maker_fee_bps"})


class KernelParams(NamedTuple):
    """The parameters as the compiled kernels see them: plain floats, NaN for "not set"."""

    quote_size_bid: float
    quote_size_ask: float
    refill_interval_sec: float
    max_position: float
    max_notional: float
    min_local_currency_before_quote: float
    stop_loss_threshold_pct: float


@dataclass(frozen=True, kw_only=True)
class MarketMakingParams:
    """SPEC §4.1 parameters shared by every market-making strategy, with the reference defaults."""

    quote_size: float = 50_000
    quote_size_bid: float | None = None  # defaults to quote_size
    quote_size_ask: float | None = None  # defaults to quote_size
    refill_interval_sec: float = 60
    max_position: float = 2_000_000
    max_notional: float | None = None  # v1 only (SPEC §0, quirk 3)
    min_local_currency_before_quote: float = 25_000
    # ANALYTICS.md A11, per fill: fill_price * fill_qty * maker_fee_bps / 1e4 + fee_per_fill. A
    # negative maker_fee_bps is a rebate. Fees never change a fill; at 0 nothing changes at all.
    maker_fee_bps: float = 0
    fee_per_fill: float = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigError(f"parameter {f.name} must be a number, got {value!r}")
            if math.isinf(value) and f.name in FEE_PARAMS:
                raise ConfigError(f"parameter {f.name} must be finite, got {value!r}")
            if value < 0 and f.name not in SIGNED_PARAMS:
                raise ConfigError(f"parameter {f.name} must be >= 0, got {value!r}")

    def kernel(self) -> KernelParams:
        """These parameters as floats for the kernels."""
        nan = math.nan
        return KernelParams(
            quote_size_bid=float(
                self.quote_size if self.quote_size_bid is None else self.quote_size_bid
            ),
            quote_size_ask=float(
                self.quote_size if self.quote_size_ask is None else self.quote_size_ask
            ),
            refill_interval_sec=float(self.refill_interval_sec),
            max_position=float(self.max_position),
            max_notional=nan if self.max_notional is None else float(self.max_notional),
            min_local_currency_before_quote=float(self.min_local_currency_before_quote),
            stop_loss_threshold_pct=float(getattr(self, "stop_loss_threshold_pct", nan)),
        )

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


# Keys any market-making config file may carry; a file shared between strategies is accepted.
CONFIG_KEYS = (*(f.name for f in dataclasses.fields(MarketMakingParams)), "stop_loss_threshold_pct")


def param_names(params_cls: type[MarketMakingParams]) -> tuple[str, ...]:
    """The parameter names a strategy accepts."""
    return tuple(f.name for f in dataclasses.fields(params_cls))


def _unknown_key(key: str, known: tuple[str, ...], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(known)}."
    return ConfigError(f"unknown parameter {key!r} {where}.{hint}")


def format_param(value: float) -> str:
    """A parameter value for people: `5` rather than `5.0` (Prefect passes grid values as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_value(text: str) -> float:
    """A `--set` value: an int or float literal."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number") from None
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def parse_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, float]:
    """`["refill_interval_sec=10", ...]` to a dict; malformed items fail with a usage hint."""
    overrides: dict[str, float] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set expects key=value, got {item!r} (e.g. --set refill_interval_sec=10)"
            )
        overrides[key.strip()] = parse_value(text.strip())
    return overrides


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """A per-security JSON config in the reference shape (`{"EMAAR": {"quote_size": ...}, ...}`)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise ConfigError(f"config file {path} must map each security to an object of parameters")
    for security, values in config.items():
        for key in values:
            if key not in CONFIG_KEYS:
                raise _unknown_key(key, CONFIG_KEYS, f"for {security} in {path}")
    return config


def config_hash(config: dict, overrides: dict) -> str:
    """A short stable hash of a config and its overrides, for lineage."""
    blob = json.dumps([config, overrides], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def resolve_params(
    params_cls: type[MarketMakingParams],
    security: str,
    config: dict[str, dict[str, Any]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> MarketMakingParams:
    """Defaults, then the security's config entry (SPEC §1.5-3), then overrides for every security."""
    known = param_names(params_cls)
    values = {k: v for k, v in (config or {}).get(security, {}).items() if k in known}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise _unknown_key(key, known, f"for strategy parameters ({params_cls.__name__})")
        values[key] = value
    return params_cls(**values)
