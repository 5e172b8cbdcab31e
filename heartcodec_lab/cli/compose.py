"""Compose a command's config once before Hydra runs it, and say in one line what is wrong with it.

Hydra's own messages for a misspelled key span several lines and do not list what is valid;
:func:`compose_checked` composes the same config with the same overrides and turns a failure into
one sentence: the key, where it was looked for and the keys (or options) that exist there.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from heartcodec_lab.conf import CONF_DIR, group_options


def compose(config: str, overrides: list[str], hydra: bool = False) -> DictConfig:
    """``conf/<config>.yaml`` composed with ``overrides`` as its command would (``+experiment=`` read as the
    experiment slot, the scale chosen from the codec, the schemas of :mod:`heartcodec_lab.conf.schemas`)."""
    from heartcodec_lab.training.run import compose_config

    return compose_config(list(overrides), config_name=config, return_hydra_config=hydra)


def compose_checked(config: str, overrides: list[str]) -> str | None:
    """None when ``conf/<config>.yaml`` composes with ``overrides`` and has no missing value, else one line why not."""
    try:
        cfg = compose(config, overrides)
    except Exception as err:  # Hydra wraps OmegaConf's errors; the message comes from the chain
        return explain(err)
    try:  # without resolving: ${hydra:...} has no value before Hydra runs
        OmegaConf.to_container(cfg, resolve=False, throw_on_missing=True)
    except MissingMandatoryValue as err:
        options = group_options(err.full_key) if "." not in err.full_key and _is_group(err.full_key) else []
        choose = f"{err.full_key}={'|'.join(options)}" if options else f"{err.full_key}=..."
        return f"missing value for {err.full_key} (set {choose})"
    return None


def _is_group(name: str) -> bool:
    from pathlib import Path

    return (Path(CONF_DIR) / name).is_dir()


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _keys_of(node) -> list[str]:
    if isinstance(node, DictConfig):
        return sorted(str(k) for k in node.keys() if str(k) != "hydra")
    return []


def explain(err: BaseException) -> str:
    """One line for a composition failure: unknown key (with the valid ones), bad value, unknown option."""
    from hydra.errors import MissingConfigException, OverrideParseException

    for cause in _chain(err):
        if isinstance(cause, MissingConfigException):
            group, _, name = str(cause.missing_cfg_file or "").rpartition("/")
            options = ", ".join(cause.options or []) or "none"
            return (
                f"no {group or 'config'} option '{name}'; choose from: {options}"
                if group
                else " ".join(str(cause).split("Config search path")[0].split())
            )
        if isinstance(cause, OverrideParseException):
            return f"cannot read the override: {' '.join(str(cause).split('See https')[0].split())}"
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError, ValidationError, MissingMandatoryValue)) or (
            isinstance(cause, OmegaConfBaseException) and "not in struct" in str(cause)
        ):
            return _explain_omegaconf(cause)
    return " ".join(str(err).split())


def _explain_omegaconf(cause: OmegaConfBaseException) -> str:
    full_key = getattr(cause, "full_key", None) or getattr(cause, "key", None) or "?"
    message = str(getattr(cause, "msg", None) or cause).splitlines()[0]
    if isinstance(cause, ValidationError):
        return f"bad value for {full_key}: {message}"
    parent = getattr(cause, "parent_node", None)
    where = full_key.rpartition(".")[0]
    keys = _keys_of(parent)
    if not keys and isinstance(parent, DictConfig):
        keys = []
    place = f"in '{where}'" if where else "at the top level"
    valid = ", ".join(keys) if keys else "(none)"
    return f"unknown key '{full_key}' {place}; valid keys: {valid}"
