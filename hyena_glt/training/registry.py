"""A local model registry: short names (``hyena-glt-base``) -> model directories.

There is no download: names resolve to directories written by ``save_pretrained`` on this
machine or a shared file system. Locations are searched in order:

1. ``$HYENA_GLT_MODEL_REGISTRY``: a JSON/YAML file mapping ``name: directory`` (relative paths
   are relative to the file), or a directory searched as in 2;
2. ``$XDG_CACHE_HOME/hyena_glt/models`` (default ``~/.cache/hyena_glt/models``): a directory
   whose ``registry.json`` maps names to directories, and whose sub-directories are models
   under their own names;
3. the models bundled with the package (``hyena_glt/assets``, :data:`BUNDLED_MODELS`):
   ``hyena-glt-base`` resolves there when no location above registers that name, so it works
   on a fresh install with no network while a locally pretrained model of the same name
   still wins.

:func:`register_model` adds a name to the first location (the workflow's pretraining step
registers ``hyena-glt-base`` there); ``hyena-glt register-model NAME DIR`` does the same.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from ..errors import ConfigurationError, ModelError
from ..io import atomic_file

__all__ = ["REGISTRY_ENV", "BUNDLED_MODELS", "registry_locations", "resolve_model",
           "register_model", "registered_models"]

REGISTRY_ENV = "HYENA_GLT_MODEL_REGISTRY"
_MAPPING_NAME = "registry.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Package data: one model directory per name (searched after every registry location).
BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "assets"


def registry_locations() -> list[Path]:
    """Registry files/directories in search order."""
    locations = []
    if os.environ.get(REGISTRY_ENV):
        locations.append(Path(os.environ[REGISTRY_ENV]).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    locations.append(cache / "hyena_glt" / "models")
    return locations


def _mapping_file(location: Path) -> Path:
    return location / _MAPPING_NAME if location.is_dir() or not location.suffix else location


def _read_mapping(path: Path) -> dict[str, Path]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as err:
        raise ConfigurationError(f"{path}: unreadable model registry ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigurationError(f"{path}: a model registry maps names to directory strings")
    return {str(name): (path.parent / value).expanduser() for name, value in data.items()}


def _bundled_models() -> dict[str, Path]:
    if not BUNDLED_MODELS.is_dir():
        return {}
    return {p.name: p for p in BUNDLED_MODELS.iterdir() if (p / "config.json").is_file()}


def registered_models() -> dict[str, Path]:
    """Every name the registry knows (earlier locations win; bundled models last)."""
    found = _bundled_models()
    for location in reversed(registry_locations()):
        if location.is_dir():
            found.update({p.name: p for p in location.iterdir()
                          if (p / "config.json").is_file()})
        found.update(_read_mapping(_mapping_file(location)))
    return found


def resolve_model(name_or_path: str | Path) -> Path:
    """A model directory for a path or a registered name.

    Raises:
        ModelError: neither a model directory nor a registered name; the message lists the
            locations searched and how to register one.
    """
    path = Path(name_or_path).expanduser()
    if (path / "config.json").is_file():
        return path
    name = str(name_or_path)
    for location in registry_locations():
        mapping = _read_mapping(_mapping_file(location))
        if name in mapping:
            if not (mapping[name] / "config.json").is_file():
                raise ModelError(f"model {name!r} is registered in {_mapping_file(location)} as "
                                 f"{mapping[name]}, which is not a model directory (no "
                                 "config.json); re-run its pretraining or register it again")
            return mapping[name]
        if location.is_dir() and (location / name / "config.json").is_file():
            return location / name
    bundled = _bundled_models()
    if name in bundled:
        return bundled[name]
    if path.is_dir() or any(sep in name for sep in "/\\"):
        models = sorted(p.name for p in path.glob("*") if (p / "config.json").is_file())
        inside = f"; it holds the model directories {', '.join(models)}" if models else ""
        state = "has no config.json" if path.is_dir() else "does not exist"
        raise ModelError(f"{path}: not a model directory ({state}){inside}; give the folder "
                         "written by hyena-glt pretrain or finetune (config.json + "
                         "model.safetensors), or a registered model name")
    searched = ", ".join(str(loc) for loc in [*registry_locations(), BUNDLED_MODELS])
    raise ModelError(
        f"unknown pretrained model {name!r}: not a model directory (config.json + "
        f"model.safetensors) and not registered; searched {searched}. Register one with "
        f"`hyena-glt register-model {name} MODEL_DIR` (or register_model(), or "
        f"`hyena-glt pretrain ... --register {name}`), or point ${REGISTRY_ENV} to a "
        "JSON/YAML file mapping names to directories")


def register_model(name: str, directory: str | Path, registry: str | Path | None = None
                   ) -> Path:
    """Map ``name`` to ``directory`` (absolute) in ``registry`` (default: the first location).

    Returns:
        The registry file written.

    Raises:
        ConfigurationError: a bad name. ModelError: ``directory`` is not a model directory.
    """
    if not _NAME.match(name):
        raise ConfigurationError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
    directory = Path(directory).expanduser().resolve()
    if not (directory / "config.json").is_file():
        raise ModelError(f"{directory}: not a model directory (no config.json); register a "
                         "directory written by save_pretrained or hyena-glt pretrain/finetune")
    target = _mapping_file(Path(registry).expanduser() if registry else registry_locations()[0])
    mapping = {key: str(value) for key, value in _read_mapping(target).items()}
    mapping[name] = str(directory)
    with atomic_file(target) as tmp:
        if target.suffix in (".yaml", ".yml"):
            tmp.write_text(yaml.safe_dump(mapping, sort_keys=True))
        else:
            tmp.write_text(json.dumps(mapping, indent=2, sort_keys=True) + "\n")
    return target
