"""The settings of a run: the base of the trainers' config dataclasses, and how two configs are compared.

A config is written to ``config.json`` (and into every checkpoint) and compared again on ``--resume``; configs
written by older versions are first brought to today's fields (:meth:`RunConfig.upgrade`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, Self

from agents.checks import MAX_BATCH, check_device, check_integer, check_number


class RunConfig:
    """Base of the dataclasses that describe a run (``A2CConfig``, ``SupervisedConfig``).

    Subclasses are dataclasses with at least ``episodes``, ``batch``, ``seed`` and ``checkpoint_every``, and set
    ``ALGO``, the trainer's name that ``config.json`` records so that one trainer never loads another's run.
    """

    ALGO: ClassVar[str] = ""
    _BY_ALGO: ClassVar[dict[str, type[RunConfig]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.ALGO:
            RunConfig._BY_ALGO[cls.ALGO] = cls

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A config dict written by an older version in today's fields: fields added since then take their
        defaults (chosen so that they reproduce the older behaviour). Subclasses also map renamed fields."""
        filled = dict(data)
        for f in dataclasses.fields(cls):
            if f.name not in filled and f.default is not dataclasses.MISSING:
                filled[f.name] = f.default
            elif f.name not in filled and f.default_factory is not dataclasses.MISSING:
                filled[f.name] = f.default_factory()
        return filled

    def check_common(self, dict_fields: tuple[str, ...] = ("env_kwargs",)) -> None:
        """Validate the fields every run has (counts, seed, ``lr`` and ``clip``, and the keyword-argument dicts
        ``dict_fields``); subclasses call it from ``__post_init__``."""
        for name in ("episodes", "checkpoint_every"):
            check_integer(name, getattr(self, name), minimum=1)
        check_integer("batch", self.batch, minimum=1, maximum=MAX_BATCH)
        check_device(getattr(self, "device", "cpu"), available=False)
        check_integer("seed", self.seed, minimum=0)
        for name in ("lr", "clip"):
            check_number(name, getattr(self, name), positive=True)
        for name in dict_fields:
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")

    @property
    def iterations(self) -> int:
        """Number of updates: ``ceil(episodes / batch)`` (each trains on ``batch`` episodes)."""
        return -(-self.episodes // self.batch)

    def to_dict(self) -> dict[str, Any]:
        return {"algo": self.ALGO, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        data = cls.upgrade(data)
        algo = data.pop("algo", cls.ALGO)
        if algo != cls.ALGO:
            raise ValueError(f"config is for the {algo!r} trainer, not the {cls.ALGO!r} one")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}; was it written by another version or trainer?")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def canonical(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from JSON (tuples become lists...), so that comparisons are exact."""
    try:
        return json.loads(json.dumps(config, sort_keys=True))
    except TypeError as error:
        raise TypeError(f"a run config must be JSON-serialisable: {error}") from None


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as its trainer's config class writes it today (:meth:`RunConfig.upgrade`), as JSON reads it."""
    owner = RunConfig._BY_ALGO.get(config.get("algo")) if isinstance(config, dict) else None
    return canonical(owner.upgrade(config)) if owner is not None else config


def config_differences(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """Human-readable ``field: old -> new`` lines for every field that differs (except ``ignore``)."""
    keys = sorted((set(old) | set(new)) - set(ignore))
    missing = object()
    return [
        f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}"
        for key in keys
        if old.get(key, missing) != new.get(key, missing)
    ]
