"""The man page ``hotspotguard(1)`` and the bash and zsh completions, generated from the command
line's own argparse parser (the one ``hotspotguard --help`` prints): one text, never a copy.

``python3 -m hotspotguard.clidocs man|bash|zsh`` prints one of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from hotspotguard import __version__

PROG = "hotspotguard"


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    metavar: str | None  # None: a switch
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    usage: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    return "" if text == argparse.SUPPRESS else text


def _options(parser: argparse.ArgumentParser) -> tuple[list[Option], list[Option]]:
    options, positionals = [], []
    for action in parser._actions:
        if _help(action) == "" and action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            continue
        choices = tuple(str(c) for c in action.choices or ())
        if action.option_strings:
            takes_value = action.nargs != 0
            metavar = str(action.metavar or action.dest.upper()) if takes_value else None
            options.append(Option(tuple(action.option_strings), metavar, _help(action), choices))
        else:
            name = str(action.metavar or action.dest)
            positionals.append(Option((name,), name, _help(action), choices))
    return options, positionals


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[Command]:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            options, positionals = _options(sub)
            usage = " ".join(sub.format_usage().split()[1:])
            yield Command(name, helps.get(name, ""), usage, tuple(options), tuple(positionals))


def describe(parser: argparse.ArgumentParser) -> tuple[Command, list[Command]]:
    """The top level (as a command named after the program) and each subcommand."""
    options, _ = _options(parser)
    usage = " ".join(parser.format_usage().split()[1:])
    top = Command(parser.prog, parser.description or "", usage, tuple(options), ())
    return top, list(_subcommands(parser))


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _option_lines(option: Option) -> list[str]:
    flags = ", ".join(f"\\fB{_roff(flag)}\\fR" for flag in option.flags)
    if option.metavar and option.flags[0].startswith("-"):
        flags += f" \\fI{_roff(option.metavar)}\\fR"
    elif not option.flags[0].startswith("-"):
        flags = f"\\fI{_roff(option.flags[0])}\\fR"
    text = option.help
    if option.choices:
        text += (" " if text else "") + "(one of: " + ", ".join(option.choices) + ")"
    return [".TP", flags, _roff(text) if text else ""]


def man_page(parser: argparse.ArgumentParser, epilog: str = "") -> str:
    """``hotspotguard(1)`` in man(7) roff; `epilog` (plain paragraphs) goes into its own
    sections, each paragraph starting ``TITLE:``."""
    top, commands = describe(parser)
    lines = [
        f'.TH {top.name.upper()} 1 "" "{top.name} {__version__}" "User Commands"',
        ".SH NAME",
        f"{_roff(top.name)} \\- {_roff(top.help.rstrip('.'))}",
        ".SH SYNOPSIS",
        f"\\fB{_roff(top.name)}\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
        ".SH OPTIONS",
    ]
    for option in top.options:
        lines += _option_lines(option)
    lines.append(".SH COMMANDS")
    for command in commands:
        lines += [".SS " + _roff(command.name), _roff(command.help) + ".", ".PP", ".nf"]
        lines += [_roff(command.usage), ".fi"]
        for option in (*command.positionals, *command.options):
            lines += _option_lines(option)
    for paragraph in (p.strip() for p in epilog.split("\n\n") if p.strip()):
        title, _, body = paragraph.partition(":")
        lines += [".SH " + _roff(title.strip().upper()), _roff(" ".join(body.split()))]
    return "\n".join(line for line in lines) + "\n"


def _words(command: Command) -> list[str]:
    words = [flag for option in command.options for flag in option.flags]
    for positional in command.positionals:
        words += positional.choices
    return words


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash-completion script: the commands, then each command's options (and choices)."""
    top, commands = describe(parser)
    function = "_" + top.name.replace("-", "_")
    cases = []
    for command in commands:
        cases.append(f'        {command.name}) words="{" ".join(_words(command))}" ;;')
    names = " ".join(command.name for command in commands)
    top_words = " ".join(flag for option in top.options for flag in option.flags)
    file_options = " ".join(
        flag
        for command in commands
        for option in command.options
        if option.metavar and option.metavar.upper() == "FILE"
        for flag in option.flags
    )
    return f"""# bash completion for {top.name} (generated from its argparse parser)
{function}() {{
    local cur prev words command i
    cur=${{COMP_WORDS[COMP_CWORD]}}
    prev=${{COMP_WORDS[COMP_CWORD-1]}}
    case " {file_options} " in *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
    command=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in -*) ;; *) command=${{COMP_WORDS[i]}}; break ;; esac
    done
    case $command in
        "") words="{names} {top_words}" ;;
{chr(10).join(cases)}
        *) words= ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F {function} {top.name}
"""


def _zsh_quote(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_spec(option: Option) -> str:
    text = _zsh_quote(option.help)
    value = ""
    if option.metavar:
        action = f"({' '.join(option.choices)})" if option.choices else ""
        if option.metavar.upper() == "FILE":
            action = "_files"
        value = f":{_zsh_quote(option.metavar.lower())}:{action}"
    if len(option.flags) > 1:
        exclusive = " ".join(option.flags)
        return f"'({exclusive})'{{{','.join(option.flags)}}}'[{text}]{value}'"
    return f"'{option.flags[0]}[{text}]{value}'"


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    """A zsh completion function (``#compdef``) with the commands' descriptions."""
    top, commands = describe(parser)
    described = "\n".join(
        f"        '{command.name}:{_zsh_quote(command.help)}'" for command in commands
    )
    cases = []
    for command in commands:
        specs = [_zsh_spec(option) for option in command.options]
        for positional in command.positionals:
            choices = " ".join(positional.choices)
            action = f"({choices})" if choices else " "
            specs.append(f"'::{_zsh_quote(positional.flags[0])}:{action}'")
        cases.append(f"        {command.name}) _arguments -s {' '.join(specs)} ;;")
    top_specs = " ".join(_zsh_spec(option) for option in top.options)
    return f"""#compdef {top.name}
# zsh completion for {top.name} (generated from its argparse parser)
_{top.name.replace("-", "_")}() {{
    local -a commands
    commands=(
{described}
    )
    local curcontext=$curcontext state line
    _arguments -C {top_specs} '1:command:->command' '*::arg:->args'
    case $state in
    command) _describe -t commands command commands ;;
    args)
        case $words[1] in
{chr(10).join(cases)}
        esac ;;
    esac
}}
_{top.name.replace("-", "_")} "$@"
"""


def _cli_parser() -> tuple[argparse.ArgumentParser, str]:
    from hotspotguard import cli

    return cli._parser(), cli.MAN_EPILOG


def render(kind: str) -> str:
    """``man``, ``bash`` or ``zsh`` for the ``hotspotguard`` command."""
    parser, epilog = _cli_parser()
    if kind == "man":
        return man_page(parser, epilog)
    if kind == "bash":
        return bash_completion(parser)
    if kind == "zsh":
        return zsh_completion(parser)
    raise ValueError(f"unknown document {kind!r} (man, bash, zsh)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("man", "bash", "zsh"):
        print("usage: python3 -m hotspotguard.clidocs man|bash|zsh", file=sys.stderr)
        return 2
    sys.stdout.write(render(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
