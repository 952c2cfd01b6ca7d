"""The one list of stages a YAML `stages:` entry may name.

Each `StageSpec` declares its YAML name, its parameters (type, default and
a one-line doc, read from the implementation's signature and its
`Parameters:` docstring block), the columns it needs and adds, and how to
build it. `config` validates `stages:` from here and `pipeline` builds from
here. Adding a filter is one new module under `rules/` and one entry in
`rules.QUALITY_RULES`.

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
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prox_spark.params import check_ranges, check_value
from prox_spark.program import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.rules import QUALITY_RULES, our_spelling
from prox_spark.schema import (
    CHUNK_ERROR,
    CHUNK_PROGRAMS,
    DEDUP_HASH,
    DOC_ERROR,
    DOC_PROGRAM,
    DOC_STATUS,
    DUPLICATE_OF,
    ID,
    MINHASH,
    REFINED_TEXT,
    RESULT_FIELDS,
    RULE_EDITS,
    RULE_ERROR,
    STATUS,
    TEXT,
)

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_NO_DEFAULT = inspect.Parameter.empty


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
class BuildContext:
    """What a stage may need besides its parameters: the model sections
    (objects with `engine`, `max_prompt_tokens`, `max_new_tokens`,
    `max_doc_chars`), the chunk policy, the rows already refined (for dedup)
    and a tokenizer to count the tokens rule edits remove."""

    doc_model: Any = None
    chunk_model: Any = None
    policy: ChunkPolicy = field(default_factory=lambda: DEFAULT_CHUNK_POLICY)
    existing: Any = None
    tokenizer: str | None = None


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


def _docs(obj: Any) -> dict[str, str]:
    """`name: one line` entries of a docstring's `Parameters:` block."""
    docs: dict[str, str] = {}
    lines = inspect.getdoc(obj) or ""
    inside = False
    for line in lines.splitlines():
        if line.strip() == "Parameters:":
            inside = True
        elif inside and ":" in line and line.startswith("    "):
            name, doc = line.strip().split(":", 1)
            docs[name.strip()] = doc.strip()
        elif inside and line.strip():
            inside = False
    return docs


def params_of(target: Any, skip: tuple[str, ...] = ()) -> tuple[Param, ...]:
    """The keyword parameters of a function or class, typed from its hints."""
    signature = inspect.signature(target)
    hints: dict[str, Any] = {}
    for source in ((target, target.__init__) if isinstance(target, type) else (target,)):
        try:
            hints.update(typing.get_type_hints(source, include_extras=True))
        except Exception:  # unresolvable annotations in a user's module: no type check
            pass
    docs = _docs(target)
    out = []
    for i, (name, p) in enumerate(signature.parameters.items()):
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY or (i == 0 and not isinstance(target, type)):
            continue  # the text argument of a rule function
        out.append(Param(name, hints.get(name), p.default, docs.get(name, "")))
    return tuple(out)


def _summary(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


_RULE_ADDS = (RULE_EDITS, RULE_ERROR, STATUS)


def _rule_spec(name: str, fn: Callable[..., Any]) -> StageSpec:
    def build(params: dict[str, Any], ctx: BuildContext) -> Any:
        from prox_spark.stages.rule_stages import RuleStage

        return RuleStage(name if name in QUALITY_RULES else fn, name=name,
                         tokenizer=ctx.tokenizer, **params)

    return StageSpec(name, _summary(fn), params_of(fn), build, adds=_RULE_ADDS,
                     open_params=any(p.kind is p.VAR_KEYWORD
                                     for p in inspect.signature(fn).parameters.values()),
                     spelling=lambda params: our_spelling(name, params))


def _dedup_spec(name: str) -> StageSpec:
    from prox_spark.stages import dedup

    kind = dedup.ExactDedup if name == "exact_dedup" else dedup.NearDedup
    adds = (DUPLICATE_OF, DEDUP_HASH if name == "exact_dedup" else MINHASH, *_RULE_ADDS)

    def build(params: dict[str, Any], ctx: BuildContext) -> Any:
        return kind(**params, existing=ctx.existing)

    return StageSpec(name, _summary(kind), params_of(kind, skip=("existing",)), build,
                     adds=adds, source_columns=("priority",), edits_as=kind.edit_name)


def _doc_stage(params: dict[str, Any], ctx: BuildContext) -> Any:
    from prox_spark.stages.model_stages import DocRefiner

    m = ctx.doc_model
    return DocRefiner(m.engine, max_prompt_tokens=m.max_prompt_tokens,
                      max_new_tokens=m.max_new_tokens, resources=m.resources)


def _chunk_stage(params: dict[str, Any], ctx: BuildContext) -> Any:
    from prox_spark.stages.model_stages import ChunkRefiner

    m = ctx.chunk_model
    return ChunkRefiner(m.engine, policy=ctx.policy, max_prompt_tokens=m.max_prompt_tokens,
                        max_new_tokens=m.max_new_tokens, max_doc_chars=m.max_doc_chars,
                        resources=m.resources)


def _builtins() -> dict[str, StageSpec]:
    specs = [
        StageSpec("prox_doc", "The doc model's keep/drop program per document.", (),
                  _doc_stage, adds=(DOC_PROGRAM, DOC_ERROR, DOC_STATUS), model="doc_model"),
        StageSpec("prox_chunk", "The chunk model's line edits, then the interpreter.", (),
                  _chunk_stage, adds=(CHUNK_PROGRAMS, CHUNK_ERROR, REFINED_TEXT,
                                      *RESULT_FIELDS), model="chunk_model"),
        *[_rule_spec(name, fn) for name, fn in QUALITY_RULES.items()],
        _dedup_spec("exact_dedup"),
        _dedup_spec("near_dedup"),
    ]
    return {s.name: s for s in specs}


_SPECS: dict[str, StageSpec] = {}


def stage_names() -> tuple[str, ...]:
    """Every built-in stage name, in registry order."""
    if not _SPECS:
        _SPECS.update(_builtins())
    return tuple(_SPECS)


def _imported(path: str) -> StageSpec:
    from prox_spark.stages.base import Stage
    from prox_spark.stages.datatrove_filter import DatatroveFilter, is_datatrove_filter

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
                         adds=_RULE_ADDS)
    if isinstance(target, type) and issubclass(target, Stage):
        def build_stage(params: dict[str, Any], ctx: BuildContext) -> Any:
            return target(**params)

        return StageSpec(path, _summary(target), params_of(target), build_stage,
                         needs=target.needs, adds=tuple(getattr(target, "adds", ())))
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

