"""The one list of stages a YAML `stages:` entry may name.

A `StageSpec` is read off a stage's one declaration (see `stages.base.Stage`):
a `Stage` class's attributes and fields, or a rule function's keyword
parameters, each `Annotated` with its `Range` and `Doc`. `config` validates
`stages:` with the rules here (`check_stage`, `check_stage_order`),
`fingerprint` hashes what it says decides the output, `stages.chain` builds
from here and `scripts/stage_table.py` writes the README's parameter list.
Adding a stage is one module and one line: a rule function in
`rules.QUALITY_RULES`, or a `Stage` class in `STAGE_CLASSES`.

A name with a colon is the user's own code, `package.module:attribute`:
a rule function `(text, **params)`, a `Stage` subclass, or a datatrove
filter class.

    >>> spec = stage_spec("c4_quality")
    >>> spec.effective({"min_words_per_line": 2})["filter_policy"]
    True
    >>> stage_spec("gopher")
    Traceback (most recent call last):
    ...
    ValueError: unknown stage 'gopher'; expected one of prox_doc, prox_chunk, gopher_quality, \
gopher_repetition, c4_quality, fineweb_quality, exact_dedup, near_dedup, or package.module:name
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prox_spark.errors import ConfigError
from prox_spark.params import check_ranges, check_value, doc_of
from prox_spark.rules import QUALITY_RULES, our_spelling
from prox_spark.schema import DOC_STATUS, ID, STATUS, TEXT
from prox_spark.stages.base import BuildContext, Stage
from prox_spark.stages.datatrove_filter import DatatroveFilter, is_datatrove_filter
from prox_spark.stages.dedup import ExactDedup, NearDedup
from prox_spark.stages.model_stages import ChunkRefiner, DocRefiner
from prox_spark.stages.rule_stages import RuleStage

MODEL_STAGES = ("prox_doc", "prox_chunk")
"""The model stages, in the order they run (doc level first)."""
DEDUP_STAGES = ("exact_dedup", "near_dedup")
"""The stages whose decision depends on rows refined before (`existing`)."""

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_NO_DEFAULT = inspect.Parameter.empty
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a stage: its declared type, default and doc."""

    name: str
    hint: Any
    default: Any
    doc: str

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class StageSpec:
    """A stage as configuration sees it.

    `model` names the config section a model stage takes its settings from;
    `source_columns` lists the parameters whose values name extra source
    columns (e.g. dedup `priority`). `output_version` is what a release
    bumps when the stage's results change for the same input and settings
    (it is part of the stage's fingerprint; the package version is not)."""

    name: str
    doc: str
    params: tuple[Param, ...]
    build: Callable[[dict[str, Any], BuildContext], Any]
    needs: tuple[str, ...] = (ID, TEXT)
    adds: tuple[str, ...] = ()
    model: str | None = None
    source_columns: tuple[str, ...] = ()
    open_params: bool = False
    output_version: int = 1
    # The `stage` its `rule_edits` entries carry, where it is not `name`.
    edits_as: str | None = None
    # Rewrites other accepted spellings of the parameters (datatrove's) to ours.
    spelling: Callable[[Mapping[str, Any]], dict[str, Any]] = dict

    def effective(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated parameters with every default filled in (ValueError
        naming the parameter otherwise): types and the `Range`s declared
        with them in the stage's signature (see `params.Range`)."""
        known = {p.name: p for p in self.params}
        params = self.spelling(params)
        if self.model is not None and params:
            raise ValueError(f"{self.name} takes its settings from its {self.model} section")
        for key, value in params.items():
            if key not in known:
                if self.open_params:
                    continue
                raise ValueError(f"unknown parameter {key!r}; expected some of "
                                 f"{', '.join(known) or '(none)'}")
            if known[key].hint is not None:
                check_value(key, value, known[key].hint)
        missing = [p.name for p in self.params if p.required and p.name not in params]
        if missing:
            raise ValueError(f"missing parameter(s): {', '.join(missing)}")
        values = {**{p.name: p.default for p in self.params if not p.required}, **params}
        check_ranges(values, {p.name: p.hint for p in self.params if p.hint is not None})
        return values

    @property
    def edit_name(self) -> str:
        """The `stage` of the `rule_edits` entries (and drop reasons) it writes."""
        return self.edits_as or self.name

    def columns_from_source(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Source columns this configured stage reads besides id and text."""
        values = self.effective(params)
        return tuple(str(values[p]) for p in self.source_columns if values.get(p) is not None)

    def create(self, params: Mapping[str, Any], context: BuildContext | None = None) -> Any:
        """The stage, ready for `df.transform`."""
        return self.build(self.effective(params), context or BuildContext())


def params_of(target: Any, skip: tuple[str, ...] = ()) -> tuple[Param, ...]:
    """The keyword parameters of a function or class: type, default, and the
    `Range` and `Doc` annotated with the type."""
    signature = inspect.signature(target)
    hints: dict[str, Any] = {}
    for source in ((target, target.__init__) if isinstance(target, type) else (target,)):
        try:
            hints.update(typing.get_type_hints(source, include_extras=True))
        except Exception:  # unresolvable annotations in a user's module: no type check
            pass
    out = []
    for i, (name, p) in enumerate(signature.parameters.items()):
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY or (i == 0 and not isinstance(target, type)):
            continue  # the text argument of a rule function
        hint = hints.get(name)
        out.append(Param(name, hint, p.default, doc_of(hint)))
    return tuple(out)


def _summary(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def _rule_spec(name: str, fn: Callable[..., Any]) -> StageSpec:
    def build(params: dict[str, Any], ctx: BuildContext) -> Any:
        return RuleStage(name if name in QUALITY_RULES else fn, name=name,
                         tokenizer=ctx.tokenizer, **params)

    return StageSpec(name, _summary(fn), params_of(fn), build, adds=RuleStage.adds,
                     open_params=any(p.kind is p.VAR_KEYWORD
                                     for p in inspect.signature(fn).parameters.values()),
                     spelling=lambda params: our_spelling(name, params))


def class_spec(kind: type[Stage], name: str | None = None) -> StageSpec:
    """The spec a `Stage` class declares (see `stages.base.Stage`); `name`
    for a user's class, named by its import path."""
    params = () if kind.config_section else params_of(kind, skip=kind.context_fields)
    return StageSpec(name or kind.stage_name, _summary(kind), params, kind.build,
                     needs=kind.needs, adds=kind.adds, model=kind.config_section,
                     source_columns=kind.source_columns, output_version=kind.output_version,
                     edits_as=getattr(kind, "edit_name", None))


def stage_classes() -> tuple[type[Stage], ...]:
    """The built-in `Stage` classes a YAML `stages:` entry names by their
    `stage_name` (the rule stages are `rules.QUALITY_RULES`)."""
    return (DocRefiner, ChunkRefiner, ExactDedup, NearDedup)


def _builtins() -> dict[str, StageSpec]:
    models = [class_spec(k) for k in stage_classes() if k.config_section]
    others = [class_spec(k) for k in stage_classes() if not k.config_section]
    rules = [_rule_spec(name, fn) for name, fn in QUALITY_RULES.items()]
    return {s.name: s for s in (*models, *rules, *others)}


_SPECS: dict[str, StageSpec] = {}


def stage_names() -> tuple[str, ...]:
    """Every built-in stage name, in registry order."""
    if not _SPECS:
        _SPECS.update(_builtins())
    return tuple(_SPECS)


def _imported(path: str) -> StageSpec:
    module_name, attr = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    target = getattr(module, attr, None)
    if target is None:
        raise ValueError(f"module {module_name!r} has no {attr!r}")
    if isinstance(target, type) and is_datatrove_filter(target):
        def build_filter(params: dict[str, Any], ctx: BuildContext) -> Any:
            return DatatroveFilter(target(**params), name=path, tokenizer=ctx.tokenizer)

        return StageSpec(path, _summary(target), params_of(target), build_filter,
                         adds=DatatroveFilter.adds)
    if isinstance(target, type) and issubclass(target, Stage):
        return class_spec(target, path)
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        return _rule_spec(path, target)
    raise ValueError(f"{path} is neither a rule function, a Stage subclass nor a datatrove "
                     "filter class")


def edit_name(stage: str) -> str:
    """The `stage` a configured stage's `rule_edits` entries carry (a user's
    stage, or one no longer built in, keeps its name)."""
    return stage_spec(stage).edit_name if stage in stage_names() else stage


def stage_spec(name: str) -> StageSpec:
    """The spec for a YAML stage name (ValueError for an unknown one)."""
    names = stage_names()
    if name in _SPECS:
        return _SPECS[name]
    if _IMPORT_PATH.match(name):
        return _imported(name)
    raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(names)}, "
                     "or package.module:name")


def default_stages(has_doc: bool, has_chunk: bool) -> tuple[str, ...]:
    """The stages of a configuration without `stages:`: its model stages, in
    run order, whose sections are configured."""
    return tuple(n for n, on in zip(MODEL_STAGES, (has_doc, has_chunk), strict=True) if on)


def check_stage(name: Any, params: Mapping[str, Any], sections: Mapping[str, bool],
                where: str) -> None:
    """One `stages:` entry against the registry: a known name (or import
    path), the model section it needs configured (`sections`: section name
    to whether it is), parameters of the right type and range. A
    ConfigError names `where` (the entry) or `where.name` (its parameters)."""
    if not isinstance(name, str):
        raise ConfigError(where, f"a stage name is a string, got {name!r}")
    try:
        spec = stage_spec(name)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    if spec.model is not None and not sections[spec.model]:
        raise ConfigError(where, f"{name} needs a {spec.model} section")
    try:
        spec.effective(params)
        if spec.model is None:
            spec.create(params)  # the stage's own range checks (threshold in (0, 1], ...)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.{name}", str(exc)) from None


def check_stage_order(names: Sequence[str]) -> None:
    """The rules of a stage list as a whole: each model and dedup stage at
    most once, the doc pass before the chunk pass (ConfigError on `stages`);
    a warning when dedup runs before a stage that can drop documents."""
    for name in (*MODEL_STAGES, *DEDUP_STAGES):
        if names.count(name) > 1:
            raise ConfigError("stages", f"{name} appears more than once")
    doc, chunk = MODEL_STAGES
    if set(MODEL_STAGES) <= set(names) and names.index(chunk) < names.index(doc):
        raise ConfigError("stages", f"{chunk} comes before {doc}: ProX refines the "
                          "document, then the chunks of the documents it keeps (its two passes "
                          f"run in this order); put {doc} first")
    _warn_dedup_before_filters(names)


def _warn_dedup_before_filters(names: Sequence[str]) -> None:
    """Log a warning when a dedup stage runs before a stage that can drop
    documents: a keeper chosen there may be dropped later, and then no copy
    of its text survives."""
    for i, name in enumerate(names):
        if name not in DEDUP_STAGES:
            continue
        later = [n for n in names[i + 1:] if n not in DEDUP_STAGES and (
            stage_spec(n).model is not None or {STATUS, DOC_STATUS} & set(stage_spec(n).adds))]
        if later:
            log.warning("stages: %s runs before %s, which can drop documents: a copy kept by "
                        "dedup may be dropped later and then none survives; put dedup stages "
                        "after the filters", name, ", ".join(later))
            return
