"""Settings, read once at start from `FRONTLINE_*` environment variables and
an optional `frontline.toml`. A bad setting is reported in one line, never as
a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.model import LANGUAGES
from bot.store.dialect import is_postgresql


def media_beside(db: Path | str) -> Path:
    """Where photos and documents go by default: `media/` beside a SQLite file;
    for a PostgreSQL URL, `media/` in the working directory."""
    return Path("media") if is_postgresql(db) else Path(db).parent / "media"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRONTLINE_", extra="forbid")

    # A SQLite file, or a libpq URL (postgresql://…) for PostgreSQL.
    db: Path | str = Path("./frontline.db")
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"
    media_dir: Path | None = None  # default: `media/` beside the database
    log_level: str = "INFO"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_listen: str = "127.0.0.1:8443"
    telegram_poll_timeout: int = Field(default=30, ge=0, le=50)
    telegram_username: str | None = None  # the bot's @name, for the poster's link
    # WeCom (企业微信) self-built app: all five of corp id, agent id, secret,
    # callback token and EncodingAESKey, or none.
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_listen: str = "127.0.0.1:8444"
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    # The link behind the corp's join QR code (管理后台 → 成员加入), for the poster.
    wecom_join_url: str | None = None
    # The desk (bot/web/): its public base URL (behind the TLS proxy), and where it listens.
    web_url: str | None = None
    web_listen: str = "127.0.0.1:8445"
    # The visits page's map: a tile server's URL template, {z}/{x}/{y} (none: a list).
    map_tiles: str | None = None

    @field_validator("telegram_api_url", "wecom_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("wecom_join_url")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        parts = urlsplit(value) if value is not None else None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http:// or https:// link")
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme != "https" or not urlsplit(value).path):
            raise ValueError("must be an https:// URL with a path (Telegram calls only https)")
        return value

    @field_validator("web_url")
    @classmethod
    def _web_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be the desk's public http:// or https:// base URL")
        return value.rstrip("/")

    @field_validator("map_tiles")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        """http(s), with {z}, {x} and {y} and no other placeholder."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        rest = value
        for placeholder in ("{z}", "{x}", "{y}"):
            if placeholder not in rest:
                raise ValueError(
                    "must hold {z}, {x} and {y}: https://tiles.example.org/{z}/{x}/{y}.png"
                )
            rest = rest.replace(placeholder, "")
        if "{" in rest or "}" in rest:
            raise ValueError("only {z}, {x} and {y} may be placeholders")
        return value

    @field_validator("telegram_listen", "wecom_listen", "web_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, for example 127.0.0.1:8443")
        return value

    @model_validator(mode="after")
    def _webhook_has_secret(self) -> Settings:
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            # Without it anyone who finds the URL could post updates as any user.
            raise ValueError("FRONTLINE_TELEGRAM_WEBHOOK_SECRET is required with a webhook URL")
        return self

    @field_validator("wecom_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) != 43:
            raise ValueError("must be the 43-character EncodingAESKey from the WeCom console")
        return value

    @model_validator(mode="after")
    def _wecom_complete(self) -> Settings:
        parts = {
            "CORP_ID": self.wecom_corp_id,
            "AGENT_ID": self.wecom_agent_id,
            "SECRET": self.wecom_secret,
            "TOKEN": self.wecom_token,
            "AES_KEY": self.wecom_aes_key,
        }
        missing = [name for name, value in parts.items() if value is None]
        if 0 < len(missing) < len(parts):
            names = ", ".join(f"FRONTLINE_WECOM_{name}" for name in missing)
            raise ValueError(f"WeCom needs all of its settings; missing {names}")
        return self

    @property
    def wecom_enabled(self) -> bool:
        return self.wecom_corp_id is not None

    @field_validator("db", mode="before")
    @classmethod
    def _database(cls, value: object) -> Path | str:
        if is_postgresql(value):
            return str(value)
        path = Path(str(value))
        # An empty FRONTLINE_DB reads as "."; SQLite cannot open a folder.
        if path == Path(".") or path.is_dir():
            raise ValueError(f"{str(value)!r} is a folder, not a database file")
        return path

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def media_path(self) -> Path:
        return self.media_dir if self.media_dir is not None else media_beside(self.db)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = config_file()
        if "FRONTLINE_CONFIG" in os.environ and not toml_file.is_file():
            # Only the default file may be absent; a named one that is not there is a mistake.
            raise FileNotFoundError("no such file")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def config_file() -> Path:
    return Path(os.environ.get("FRONTLINE_CONFIG", "frontline.toml"))


class ConfigError(Exception):
    """A setting is wrong; the message is one line naming it."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "configuration"
        if first["type"] == "extra_forbidden":  # only a config file can bring unknown keys
            raise ConfigError(f"unknown setting {name!r} in {config_file()}") from None
        setting = f"FRONTLINE_{name.upper()}" if first["loc"] else name
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"bad setting {setting}: {message}") from None
    except (OSError, ValueError) as exc:  # an unreadable or malformed frontline.toml
        raise ConfigError(f"bad configuration file {config_file()}: {exc}") from None
