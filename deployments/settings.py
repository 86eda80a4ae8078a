"""The settings of the served deployments: `deployments/nightly.toml` (or the file named by
$MMFLOW_NIGHTLY_SETTINGS), then the environment variables MMFLOW_NIGHTLY_DATA,
MMFLOW_NIGHTLY_STRATEGIES, MMFLOW_NIGHTLY_DROP, MMFLOW_NIGHTLY_HISTORY, MMFLOW_NIGHTLY_NOTIFY and
MMFLOW_STORE on top. Validated once, here, with messages that name
the file, the key and what to do."""

from __future__ import annotations

import difflib
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SETTINGS = Path(__file__).with_name("nightly.toml")
SETTINGS_ENV = "MMFLOW_NIGHTLY_SETTINGS"
DATA_ENV = "MMFLOW_NIGHTLY_DATA"
STRATEGIES_ENV = "MMFLOW_NIGHTLY_STRATEGIES"
STORE_ENV = "MMFLOW_STORE"
# The nightly loop: the drop folder to ingest, the tick history, where to send alarms.
LOOP_ENV = {
    "drop": "MMFLOW_NIGHTLY_DROP",
    "history": "MMFLOW_NIGHTLY_HISTORY",
    "notify": "MMFLOW_NIGHTLY_NOTIFY",
}
KEYS = ("data", "strategies", "store", "cron", "timezone", "drop", "history", "notify")


class SettingsError(ValueError):
    """Settings that cannot be used; the message says where and what to change."""


@dataclass(frozen=True, kw_only=True)
class NightlySettings:
    """What the deployments run on; paths are absolute."""

    data: str
    strategies: tuple[str, ...]
    store: str
    cron: str = "0 2 * * *"
    timezone: str = "Asia/Dubai"
    drop: str | None = None  # a folder whose new workbooks / .parquet files are ingested nightly
    history: str | None = None  # the tick history the nightly run backtests (else `data`)
    notify: str | None = None  # an apprise or http(s) URL that gets alarms
    source: str = "defaults"  # where the values came from, for `mmflow serve` to print


def load_settings(
    path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> NightlySettings:
    """The settings from `path` (else $MMFLOW_NIGHTLY_SETTINGS, else deployments/nightly.toml),
    with the environment's MMFLOW_NIGHTLY_DATA, _STRATEGIES, _DROP, _HISTORY, _NOTIFY and
    MMFLOW_STORE on top."""
    from engine.settings import DEFAULT_DATA, DEFAULT_STORE, DEFAULT_STRATEGY

    env = os.environ if environ is None else environ
    file = Path(path or env.get(SETTINGS_ENV) or DEFAULT_SETTINGS)
    values, sources = _read_file(file, required=bool(path or env.get(SETTINGS_ENV)))
    if env.get(DATA_ENV):
        values["data"], sources = env[DATA_ENV], sources + [DATA_ENV]
    if env.get(STRATEGIES_ENV):
        values["strategies"] = [s.strip() for s in env[STRATEGIES_ENV].split(",") if s.strip()]
        sources = sources + [STRATEGIES_ENV]
    if env.get(STORE_ENV):
        values["store"], sources = env[STORE_ENV], sources + [STORE_ENV]
    for key, name in LOOP_ENV.items():
        if env.get(name):
            values[key], sources = env[name], sources + [name]
    where = " + ".join(sources) or "defaults"
    strategies = _strategies(values.get("strategies", [DEFAULT_STRATEGY]), where)
    return NightlySettings(
        data=_absolute(values.get("data", str(DEFAULT_DATA)), "data", where),
        strategies=strategies,
        store=_absolute(values.get("store", str(DEFAULT_STORE)), "store", where),
        cron=_cron(values.get("cron", "0 2 * * *"), where),
        timezone=_timezone(values.get("timezone", "Asia/Dubai"), where),
        **_loop(values, where),
        source=where,
    )


def _read_file(file: Path, *, required: bool) -> tuple[dict, list[str]]:
    """The [nightly] table of `file` (empty when the default file is absent) and its source."""
    if not file.is_file():
        if required:
            raise SettingsError(
                f"settings file {file} not found: fix {SETTINGS_ENV} (or --settings), "
                f"or copy {DEFAULT_SETTINGS} there"
            )
        return {}, []
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from exc
    unknown_tables = sorted(set(document) - {"nightly"})
    if unknown_tables:
        raise SettingsError(f"{file}: unknown table or key {unknown_tables[0]!r}; use [nightly]")
    table = document.get("nightly", {})
    for key in table:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise SettingsError(
                f"{file}: unknown key {key!r} in [nightly]. {hint}Known keys: {', '.join(KEYS)}"
            )
    return dict(table), [str(file)]


def _absolute(value: object, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{where}: {key} must be a non-empty path string, got {value!r}")
    return str(Path(value).expanduser().absolute())


def _loop(values: dict, where: str) -> dict:
    """drop, history (absolute paths or None) and notify; a drop folder needs a history."""
    out = {
        key: None if values.get(key) is None else _absolute(values[key], key, where)
        for key in ("drop", "history")
    }
    if out["drop"] and not out["history"]:
        raise SettingsError(
            f"{where}: drop is set but history is not; set history to the tick-history folder "
            'the drop folder is ingested into, e.g. history = "data/history"'
        )
    return out | {"notify": _notify_url(values.get("notify"), where)}


def _notify_url(value: object, where: str) -> str | None:
    """None, an http(s) webhook, or a URL apprise understands (json://, mailto://, ...)."""
    if value is None or value == "":
        return None
    scheme = value.split("://", 1)[0].lower() if isinstance(value, str) else ""
    if not isinstance(value, str) or "://" not in value:
        raise SettingsError(
            f'{where}: notify must be a URL such as "json://host:port/path" (apprise) or '
            f'"https://host/hook", got {value!r}'
        )
    if scheme in ("http", "https"):
        return value
    import apprise

    if not apprise.Apprise().add(value):
        raise SettingsError(
            f"{where}: notify URL scheme {scheme + '://'!r} is not one apprise knows; see "
            "https://github.com/caronc/apprise/wiki, or use an http(s):// webhook"
        )
    return value


def _strategies(value: object, where: str) -> tuple[str, ...]:
    from engine.sim import strategies

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SettingsError(
            f"{where}: strategies must be a non-empty list of names, e.g. "
            f'["v2_price_follow_qty_cooldown"], got {value!r}'
        )
    for name in value:
        try:
            strategies.get(name)
        except strategies.UnknownStrategyError as exc:
            raise SettingsError(f"{where}: {exc}") from exc
    if len(set(value)) != len(value):
        raise SettingsError(f"{where}: strategies lists a name twice: {value!r}")
    return tuple(value)


def _cron(value: object, where: str) -> str:
    from prefect.schedules import Cron

    if not isinstance(value, str):
        raise SettingsError(f'{where}: cron must be a string such as "0 2 * * *", got {value!r}')
    try:
        Cron(value)  # validates
    except ValueError as exc:
        raise SettingsError(f'{where}: cron {value!r} is not valid, e.g. "0 2 * * *"') from exc
    return value


def _timezone(value: object, where: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            f'{where}: timezone {value!r} is not an IANA time zone, e.g. "Asia/Dubai"'
        ) from exc
    return str(value)
