"""The edits of fairseq's Hydra front ends. fairseq-hydra-train (fairseq_cli/hydra_train.py):
`--user-dir DIR` as in fairseq-train, options and overrides in any order, any field of a
registered component overridable as group.key=value, a one-line error for an unknown key. Both
it and fairseq-train (fairseq/dataclass/utils.py): no notices about fairseq's own use of Hydra.
A data table, mostly the literal text inserted into fairseq."""

from __future__ import annotations

from .edits import Edit, import_edit

HYDRA_TRAIN = "fairseq_cli/hydra_train.py"
PREPARE_ARGV = """

def _options_then_overrides(argv):
    \"\"\"Hydra's parser takes no option after the first override: put the options first.\"\"\"
    from hydra._internal.utils import get_args_parser

    actions = {s: a for a in get_args_parser()._actions for s in a.option_strings}
    options, overrides, i = [], [], 0
    while i < len(argv):
        arg, action, i = argv[i], actions.get(argv[i].split("=", 1)[0]), i + 1
        if action is None and not arg.startswith("-"):
            overrides.append(arg)
            continue
        options.append(arg)
        value = arg == "--user-dir" or (action is not None and action.nargs is None)
        optional = action is not None and action.nargs == "?"  # --info [TOPIC]
        if "=" not in arg and i < len(argv) and (value or optional and argv[i] in action.choices):
            options.append(argv[i])
            i += 1
    return options, overrides


def _prepare_argv(argv):
    \"\"\"`--user-dir DIR` as in fairseq-train, anywhere on the command line: imported before Hydra
    composes the config and passed on as common.user_dir=/abs/DIR (a common.user_dir= override is
    imported early too). Plain overrides of the fields of the registry groups (task, model,
    criterion, ...) are applied with ++, so a field the yaml does not list can be set as
    group.key=value; add_defaults still rejects a key the component's dataclass lacks.\"\"\"
    from argparse import Namespace
    from typing import Any

    from fairseq.utils import import_user_module

    options, overrides = _options_then_overrides(argv)
    user_dirs, rest, args = set(), [], iter(options)
    for arg in args:
        if arg == "--user-dir":
            user_dirs.add(next(args, ""))
        elif arg.startswith("--user-dir="):
            user_dirs.add(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    user_dirs |= {o.split("=", 1)[1] for o in overrides if o.startswith("common.user_dir=")}
    user_dirs = {os.path.abspath(d) if os.path.exists(d) else d for d in user_dirs}
    if "" in user_dirs or len(user_dirs) > 1:
        sys.exit(f"fairseq-hydra-train: error: give one plugin folder, not {sorted(user_dirs)}")
    overrides = [o for o in overrides if not o.startswith("common.user_dir=")]
    if user_dirs:
        user_dir = user_dirs.pop()
        import_user_module(Namespace(user_dir=user_dir))
        overrides.append(f"common.user_dir={user_dir}")
    fields = FairseqConfig.__dataclass_fields__
    groups = "|".join(k for k, f in fields.items() if f.type == Any)
    plain = re.compile(rf"^({groups})\\.\\w[\\w.]*=")
    return rest + ["++" + o if plain.match(o) else o for o in overrides]


def cli_main():
    sys.argv[1:] = _prepare_argv(sys.argv[1:])
    try:
"""


DATACLASS_UTILS = "fairseq/dataclass/utils.py"
QUIET_HYDRA = r'''def quiet_hydra_notices():
    """Ignores Hydra's deprecation notices about fairseq's own use of Hydra 1.0/1.1 (the
    experimental compose API, strict, version_base, schema matching, _group_ headers, chdir):
    they are not the user's concern."""
    for message in (
        "The version_base parameter is not specified",
        "'.*' is validated against ConfigStore schema",
        "Future Hydra versions will no longer change working directory",
        ".*Usage of deprecated keyword in package header",
        r"hydra\.experimental\.\w+\(\) is no longer experimental",
        "The strict flag in the compose API is deprecated",
    ):
        warnings.filterwarnings("ignore", message=r"\s*" + message)


@contextlib.contextmanager
def _hydra_notices_quieted():
    with warnings.catch_warnings():
        quiet_hydra_notices()
        yield


'''
CONVERT = "def convert_namespace_to_omegaconf(args: Namespace) -> DictConfig:\n"
HYDRA_MAIN = (
    '@hydra.main(config_path=os.path.join("..", "fairseq", "config"), config_name="config")'
)


def hydra_notice_edits() -> list[Edit]:
    """quiet_hydra_notices() in fairseq.dataclass.utils, used by fairseq-train while it composes
    its config and by fairseq-hydra-train (hydra_train_edits)."""
    reason = (
        "Hydra's deprecation notices about fairseq's own use of Hydra 1.0 (experimental API, "
        "strict, _group_ headers, schema matching) printed by every fairseq-train run"
    )
    compose = "    with initialize(config_path=config_path):\n"
    return [
        Edit(
            DATACLASS_UTILS,
            "import ast\nimport inspect\nimport logging\nimport os\nimport re\n",
            "import ast\nimport contextlib\nimport inspect\nimport logging\nimport os\nimport re\n"
            "import warnings\n",
            "imports needed by the edits below",
            required=False,
        ),
        Edit(DATACLASS_UTILS, CONVERT, QUIET_HYDRA + CONVERT, reason, required=False),
        Edit(
            DATACLASS_UTILS,
            compose,
            compose.replace("with ", "with _hydra_notices_quieted(), "),
            reason,
            required=False,
        ),
    ]


def hydra_train_edits() -> list[Edit]:
    return [
        Edit(
            HYDRA_TRAIN,
            HYDRA_MAIN,
            "quiet_hydra_notices()\n\n\n" + HYDRA_MAIN,
            "Hydra's deprecation notices about fairseq's own use of Hydra 1.0/1.1 behaviour "
            "(version_base, schema matching, _group_ headers, chdir) printed on every run",
            required=False,
        ),
        Edit(
            HYDRA_TRAIN,
            "from fairseq.dataclass.utils import omegaconf_no_object_check\n",
            "from fairseq.dataclass.utils import omegaconf_no_object_check, quiet_hydra_notices\n",
            "import needed by the edit above",
            required=False,
        ),
        Edit(
            HYDRA_TRAIN,
            "\n\ndef cli_main():\n    try:\n",
            PREPARE_ARGV,
            "fairseq-hydra-train --user-dir DIR like fairseq-train; options and overrides in any "
            "order; any field of a registered component's dataclass overridable as "
            "group.key=value (the yaml need not list it)",
        ),
        Edit(
            HYDRA_TRAIN,
            "    add_defaults(cfg)\n",
            "    try:\n        add_defaults(cfg)\n"
            "    except ConfigKeyError as err:  # model.key=value naming no field of the model\n"
            '        sys.exit(f"fairseq-hydra-train: error: {err}")\n',
            "an override of a field the component lacks: one line naming it, not a traceback",
            required=False,
        ),
        Edit(
            HYDRA_TRAIN,
            "from omegaconf import OmegaConf, open_dict\n",
            "from omegaconf import OmegaConf, open_dict\n"
            "from omegaconf.errors import ConfigKeyError\n",
            "import needed by the edit above",
            required=False,
        ),
        import_edit(
            HYDRA_TRAIN,
            "import logging\nimport os\n",
            "import logging\nimport os\nimport re\nimport sys\n",
        ),
        Edit(
            "fairseq/tasks/text_to_speech.py",
            '    logger.info("Please install tensorboardX: pip install tensorboardX")\n',
            '    logger.debug("Please install tensorboardX: pip install tensorboardX")\n',
            "an optional dependency of the TTS task was announced on every import of "
            "fairseq.tasks (every command, even --help)",
            required=False,
        ),
    ]
