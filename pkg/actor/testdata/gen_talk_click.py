#!/usr/bin/python3
"""Writes talk_click.json: how the original fliswarm parses `talk` lines.

The original (sdss-fliswarm 0.7) declares talk as a click command on a CLU
actor:

    @click.argument("CAMERA-COMMAND", nargs=-1, type=str)
    @click.option("--names", "-n", type=str)
    @click.option("--category", "-c", type=str)

CLU splits the command body with shlex.split and hands the words to click;
its CluCommand sets context_settings ignore_unknown_options=True, so an
unknown option (`--count 2`, `-5`) is kept as a word of CAMERA-COMMAND
instead of being rejected. The original then joins the words with single
spaces into the camera command. This script rebuilds that command with the
same declaration and settings and records, for each line after `talk `,
click's result; pkg/actor's TestTalkArgsMatchClick reads the JSON (no
python at test time).

Regenerate (from the repository root) with Debian's click:

    apt-get install -y python3-click
    /usr/bin/python3 pkg/actor/testdata/gen_talk_click.py > pkg/actor/testdata/talk_click.json

Add a case by appending a line to LINES and regenerating.
"""

import contextlib
import importlib.metadata
import io
import json
import shlex
import sys

import click

# Command lines after the verb, as a user types them.
LINES = [
    "expose 5",
    "-n gfa1 expose 5",
    "expose 5 -n gfa1",
    "expose -n gfa1 5",
    "-c gfa expose 5 -n gfa2",
    "expose 5 --count 2",
    "expose 5 --count 2 -n gfa1",
    "-n gfa1 -n gfa2 expose 5",
    "-n gfa1 expose 5 --names gfa3",
    "-n=gfa1 expose 5",
    "--names=gfa1,gfa2 expose 5",
    "--names= expose 5",
    "-ngfa1 expose 5",
    "-cgfa expose 5",
    "-cn gfa1 expose",
    "-xn gfa1 expose",
    "--category gfa expose 1",
    "-- expose 5 -n gfa1",
    "-n gfa1 -- -n gfa2 expose",
    "expose -- -n gfa1",
    "expose 5 -- --",
    "-n gfa1 'expose 5'",
    "\"expose 5\" -n gfa1",
    "expose 5 --filename 'a b.fits'",
    "expose 5 -n",
    "-n",
    "expose --names",
    "-n --category gfa1 expose",
    "-n -- expose",
    "",
    "-n gfa1",
    "-n gfa1 --",
    "--",
    "set-temperature -10",
    "expose -5 -n gfa1",
    "expose - -n gfa1",
    "expose --nam gfa1",
    "expose --count=2",
    "expose -h",
    "expose --help",
    "--help=yes expose",
    "expose '' -n gfa1",
    "expose 5 -N gfa1",
    "expose 5 ---n gfa1",
    "expose 5 -n \"gfa1, gfa2\"",
    "status -nc",
]


def talk_command():
    @click.command(context_settings={"ignore_unknown_options": True})
    @click.argument("CAMERA-COMMAND", nargs=-1, type=str)
    @click.option("--names", "-n", type=str)
    @click.option("--category", "-c", type=str)
    def talk(camera_command, names, category):
        pass

    return talk


def parse(line):
    words = shlex.split(line)
    case = {"line": line, "args": words}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # --help prints
            ctx = talk_command().make_context("talk", list(words))
    except click.exceptions.Exit:
        case["help"] = True
        return case
    except click.UsageError as err:
        case["error"] = err.format_message()
        return case
    p = ctx.params
    case["names"] = p["names"]
    case["category"] = p["category"]
    case["words"] = list(p["camera_command"])
    case["camera_command"] = " ".join(p["camera_command"])
    return case


def main():
    out = {
        "generator": "pkg/actor/testdata/gen_talk_click.py",
        "click": importlib.metadata.version("click"),
        "cases": [parse(line) for line in LINES],
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
