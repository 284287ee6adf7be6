"""Settings checked before a run: every key a user gives on the command line or in a YAML file
is one that RecBole, the protocol or the model reads, and the numbers the models are shaped by
have a sensible type and range.

RecBole keeps any key it is given: ``--embeding_size=32`` or ``--foo_bar=1`` ran with the defaults
and a result that looked like an answer, and ``--embedding_size=abc`` or ``--n_layers=1.5`` ended
in a traceback deep in a model. :func:`check_command_line` and :func:`check_files` run before the
Config is built, :func:`check_settings` after it; each raises one ``ValueError`` paragraph.
"""

from __future__ import annotations

import difflib
import inspect
import re
from functools import lru_cache
from pathlib import Path

import recbole
import yaml
from recbole.config import Config
from recbole.utils import argument_list

import recbole_sdmtmp
from recbole_sdmtmp.config import PROPERTIES
from recbole_sdmtmp.registry import resolve_model

# Keys read as config["key"] (or config.get("key")) in source code.
READ_KEY = re.compile(r"""config(?:\[|\.get\()\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
# RecBole's code besides its models: the keys its data, trainers and evaluators read.
RECBOLE_PARTS = ("config", "data", "trainer", "evaluator", "sampler", "utils")
# The project's code besides its models.
PROJECT_PARTS = ("*.py", "data/*.py", "experiments/*.py")

# (keys, what a value must be, test): ranges of the numbers that shape a model or its training.
RANGES = (
    (re.compile(r"(_size|^epochs|^n_heads|^MAX_ITEM_LIST_LENGTH)$"),
     "a whole number of at least 1", lambda v: v >= 1),
    (re.compile(r"^(n_layers|subgraph_fanout)$"), "a whole number of at least 0", lambda v: v >= 0),
    (re.compile(r"dropout"), "a probability from 0 up to (not including) 1", lambda v: 0 <= v < 1),
    (re.compile(r"^learning_rate$|temperature$"), "a number greater than 0", lambda v: v > 0),
    (re.compile(r"^(weight_decay|reg_weight|gamma1|gamma2|beta)$"), "a number of at least 0",
     lambda v: v >= 0),
    (re.compile(r"ratio$"), "a number above 0 and at most 1", lambda v: 0 < v <= 1),
)


def _read_keys(paths) -> set[str]:
    keys = set()
    for path in paths:
        try:
            keys |= set(READ_KEY.findall(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return keys


def _yaml_keys(paths) -> set[str]:
    keys = set()
    for path in paths:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            keys |= {str(key) for key in loaded}
    return keys


@lru_cache(maxsize=None)
def _common_keys() -> frozenset[str]:
    """Every model's keys: RecBole's argument lists and YAML defaults, the keys its non-model
    code reads, the project's property files and the keys its non-model code reads."""
    recbole_dir = Path(recbole.__file__).parent
    keys = set()
    for name in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        keys |= set(getattr(argument_list, name))
    keys |= _yaml_keys([recbole_dir / "properties" / "overall.yaml",
                        recbole_dir / "properties" / "dataset" / "sample.yaml",
                        *(recbole_dir / "properties" / "quick_start_config").glob("*.yaml")])
    keys |= _read_keys(path for part in RECBOLE_PARTS for path in (recbole_dir / part).rglob("*.py"))
    keys |= _yaml_keys([PROPERTIES / "protocol.yaml", *(PROPERTIES / "dataset").glob("*.yaml")])
    project_dir = Path(recbole_sdmtmp.__file__).parent
    keys |= _read_keys(path for pattern in PROJECT_PARTS for path in project_dir.glob(pattern))
    return frozenset(keys)


@lru_cache(maxsize=None)
def _model_keys(model_class: type) -> frozenset[str]:
    """The keys of one model: its YAML files (RecBole's and the project's) and what its source
    reads (its class and base classes; for the project's models, their whole package)."""
    name = model_class.__name__
    files = [Path(recbole.__file__).parent / "properties" / "model" / f"{name}.yaml",
             PROPERTIES / "model" / f"{name}.yaml"]
    keys = _yaml_keys([path for path in files if path.is_file()])
    sources = set()
    for cls in inspect.getmro(model_class):
        try:
            sources.add(Path(inspect.getsourcefile(cls)))
        except (TypeError, OSError):
            continue
    project_dir = Path(recbole_sdmtmp.__file__).parent
    for source in list(sources):
        if project_dir in source.parents and source.parent != project_dir:
            sources |= set(source.parent.glob("*.py"))
    sources |= set((project_dir / "model" / "layers").glob("*.py"))
    return frozenset(keys | _read_keys(sources))


def known_keys(model_class: type) -> frozenset[str]:
    """The keys a run of ``model_class`` reads."""
    return _common_keys() | _model_keys(model_class)


def check_command_line(overrides: list[str]) -> None:
    """Settings are ``--key=value``: anything else would be dropped by RecBole with a warning."""
    odd = [arg for arg in overrides if not arg.startswith("--") or len(arg[2:].split("=")) != 2]
    if odd:
        raise ValueError(f"{' '.join(odd)}: not an option of this command, and settings are written "
                         "--key=value (for example --embedding_size=64)")


def check_files(files: list[str]) -> None:
    """Every ``--config_files`` file exists and holds a YAML mapping."""
    for name in files:
        path = Path(name)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--config_files {name} cannot be read ({error.strerror or error})") from None
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise ValueError(f"--config_files {name} is not valid YAML{line} "
                             f"({getattr(error, 'problem', None) or error})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"--config_files {name} holds a YAML {type(loaded).__name__}, not "
                             "settings of the form key: value")


def given_settings(config: Config, files: list[str]) -> dict[str, tuple[object, str]]:
    """{key: (value, where it was given)} of the user's YAML files and command line, as RecBole
    read them (the command line last, as it wins)."""
    given = {}
    for name in files:
        loaded = yaml.load(Path(name).read_text(encoding="utf-8"), Loader=config.yaml_loader) or {}
        given.update({str(key): (value, f"in {name}") for key, value in loaded.items()})
    given.update({key: (value, "on the command line")
                  for key, value in config.cmd_config_dict.items()})
    return given


def _problem(key: str, value: object, default: object) -> str | None:
    """Why ``value`` cannot stand for a setting whose default is ``default``, or None."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "True or False"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            return "a whole number"
    elif isinstance(default, float) and not number:
        return "a number"
    if number and isinstance(default, (int, float)):
        for pattern, wanted, test in RANGES:
            if pattern.search(key) and not test(value):
                return wanted
    return None


def check_settings(config: Config, files: list[str] = ()) -> None:
    """Every key the user gave is known to RecBole, the protocol or ``config``'s model, and the
    project's settings (and RecBole's sizes, rates and probabilities) have their type and range;
    else one ValueError paragraph."""
    known = known_keys(resolve_model(config["model"])[0]) | {"model", "dataset"}
    given = given_settings(config, list(files))
    problems = []
    for key, (value, where) in given.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key} {where} is not a setting of RecBole, the protocol or "
                            f"{config['model']}{hint}")
            continue
        own = _project_defaults(config["model"])
        if key not in own and not any(pattern.search(key) for pattern, _, _ in RANGES):
            continue  # a key of RecBole's own that may take several types (reranker_CAN_NUM)
        default = own.get(key, config.internal_config_dict.get(key))
        wanted = None if default is None else _problem(key, value, default)
        if wanted is not None:
            problems.append(f"{key}={value!r} {where} must be {wanted}")
    if problems:
        raise ValueError("; ".join(problems) + ". Nothing was run.")


@lru_cache(maxsize=None)
def _project_defaults(model: str) -> dict:
    """The values of the project's property files for ``model`` (protocol, model, datasets)."""
    defaults = {}
    for path in [PROPERTIES / "protocol.yaml", PROPERTIES / "dataset" / "default.yaml",
                 PROPERTIES / "model" / f"{model}.yaml"]:
        if path.is_file():
            defaults.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return defaults
