"""The ``coach`` command. Thin glue: domain errors become one line on stderr and an exit code
(2 for bad input, 1 for other failures); data goes to stdout, messages to stderr."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from coach import __version__
from coach.catalog import available_routines, resolve_routine
from coach.duration import clock, format_duration
from coach.errors import CoachError, ScriptError
from coach.plan import Plan, PlanOptions, Segment, build_plan
from coach.routine import SIDES, Exercise, Level, Routine
from coach.script import load_routine

DEBUG_VARIABLE = "COACH_DEBUG"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "routine.schema.json"


class _CoachGroup(click.Group):
    """Turns ``CoachError`` into its one-line message; hides tracebacks unless COACH_DEBUG is set."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CoachError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # `coach list | head`: the reader left; nothing to report.
            sys.stderr.close()
            ctx.exit(1)
        except Exception as error:  # the last line of defence: never a traceback for a user
            if os.environ.get(DEBUG_VARIABLE):
                raise
            click.echo(f"Error: internal error ({type(error).__name__}: {error}); please report it, "
                       f"with the output of the same command run with {DEBUG_VARIABLE}=1", err=True)
            ctx.exit(1)


@click.group(cls=_CoachGroup)
@click.version_option(__version__, prog_name="coach")
def cli() -> None:
    """A hands-free, voice-guided coach for physical-therapy exercise routines.

    Not medical advice: follow the routine your clinician gave you, and stop and contact a
    clinician if you feel sharp pain, lose feeling in a leg, or have bladder or bowel trouble.
    """


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


_side_option = click.option(
    "--side", type=click.Choice(["both", *SIDES]), default="both", show_default=True,
    help="Run only this side of exercises that have sides.")
_easier_option = click.option(
    "--easier", is_flag=True, help="Use every exercise's easier level (shorter holds, less force).")
_pace_option = click.option(
    "--pace", type=float, default=1.0, show_default=True,
    help="Time between things, from 0.5 (brisk) to 2.0 (slow); holds never change.")


def _options(routine: Routine, side: str, easier: bool, pace: float) -> PlanOptions:
    sides = None if side == "both" else (side,)
    ids = frozenset(exercise.id for exercise in routine.exercises) if easier else frozenset()
    return PlanOptions(sides=sides, easier=ids, pace=pace)  # type: ignore[arg-type]


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """List the routines: bundled ones and your own (in the user folder's routines/)."""
    rows = []
    for ref in available_routines():
        try:
            routine = load_routine(ref.path, ref.id)
        except ScriptError as error:
            click.echo(f"Warning: skipping {error}", err=True)
            continue
        plan = build_plan(routine)
        rows.append({
            "id": ref.id, "title": routine.title, "path": str(ref.path), "origin": ref.origin,
            "exercises": len(routine.exercises), "total_seconds": round(plan.total_seconds, 3),
            "description": routine.description,
        })
    if as_json:
        _emit_json(rows)
        return
    width = max((len(row["id"]) for row in rows), default=2)
    for row in rows:
        click.echo(f"{row['id']:<{width}}  {clock(row['total_seconds']):>6}  {row['title']}"
                   f"{'  (yours)' if row['origin'] == 'user' else ''}")


@cli.command("show")
@click.argument("routine_name", metavar="ROUTINE")
@_side_option
@_easier_option
@_pace_option
@click.option("--json", "as_json", is_flag=True, help="Print the routine and its plan as one JSON object.")
def show_command(routine_name: str, side: str, easier: bool, pace: float, as_json: bool) -> None:
    """Show a routine and its session plan: everything the coach will say, and when.

    ROUTINE is a routine id from 'coach list' or the path of a script file. Speech lengths are
    estimated from the word count.
    """
    ref = resolve_routine(routine_name)
    routine = load_routine(ref.path, ref.id)
    plan = build_plan(routine, _options(routine, side, easier, pace))
    if as_json:
        _emit_json(_plan_json(plan))
        return
    _print_plan(plan)


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
def validate_command(files: tuple[str, ...]) -> None:
    """Check exercise scripts; print one line per file. Exit 2 if any is invalid."""
    invalid = 0
    for name in files:
        try:
            routine = load_routine(name)
            plan = build_plan(routine)
        except ScriptError as error:
            invalid += 1
            click.echo(f"Error: {error}", err=True)
            continue
        count = len(routine.exercises)
        click.echo(f"ok: {name} ({count} exercise{'s' if count != 1 else ''}, about {clock(plan.total_seconds)})")
    if invalid:
        raise click.exceptions.Exit(2)


@cli.command("schema")
@click.option("--path", "show_path", is_flag=True, help="Print the schema file's path instead of its text.")
def schema_command(show_path: bool) -> None:
    """Print the JSON Schema of the script format, for editors that validate and autocomplete YAML."""
    path = SCHEMA_PATH
    click.echo(str(path) if show_path else path.read_text(encoding="utf-8").rstrip("\n"))


def _level_json(level: Level) -> dict[str, object]:
    return {
        "hold_seconds": level.hold_seconds, "reps": level.reps,
        "pace_seconds": level.pace_seconds if level.reps is not None else None,
        "rounds": level.rounds, "rest_seconds": level.rest_seconds,
        "countdown": (None if level.countdown is None
                      else {"seconds": level.countdown.seconds, "style": level.countdown.style}),
        "cues": [{"at": cue.at_seconds, "say": cue.text} for cue in level.cues],
    }


def _exercise_json(exercise: Exercise, easier: bool) -> dict[str, object]:
    level = exercise.easier if easier else exercise.normal
    return {
        "id": exercise.id, "name": exercise.name, "sides": list(exercise.sides),
        "intensity": "easier" if easier else "normal",
        **_level_json(level),
        "settle_seconds": exercise.settle_seconds,
        "easier": {**_level_json(exercise.easier), "scripted": exercise.easier_is_scripted},
    }


def _plan_json(plan: Plan) -> dict[str, object]:
    routine = plan.routine
    return {
        "id": routine.id, "title": routine.title, "description": routine.description,
        "source": routine.source, "safety": routine.safety, "path": str(routine.path),
        "total_seconds": round(plan.total_seconds, 3),
        "speech_timing": "estimated",
        "options": {"sides": list(plan.options.sides) if plan.options.sides else None,
                    "easier": sorted(plan.options.easier), "pace": plan.options.pace},
        "exercises": [_exercise_json(exercise, exercise.id in plan.options.easier) for exercise in routine.exercises],
        "plan": [segment.to_json() for segment in plan.segments],
    }


def _print_plan(plan: Plan) -> None:
    routine = plan.routine
    click.echo(f"{routine.title}  [{routine.id}, about {clock(plan.total_seconds)}]")
    if routine.description:
        click.echo(routine.description)
    if routine.source:
        click.echo(f"Source: {routine.source}")
    click.echo()
    for number, exercise in enumerate(routine.exercises, start=1):
        level = exercise.easier if exercise.id in plan.options.easier else exercise.normal
        amount = (f"{format_duration(level.hold_seconds)} hold" if level.hold_seconds is not None
                  else f"{level.reps} reps every {format_duration(level.pace_seconds)}")
        sides = f", {' then '.join(exercise.sides)}" if exercise.sides else ""
        click.echo(f"{number}. {exercise.name}: {amount} x {level.rounds}{sides}")
    click.echo()
    for segment in plan.segments:
        click.echo(f"{clock(segment.start):>6}  {_describe(segment)}")


def _describe(segment: Segment) -> str:
    if segment.kind == "speech":
        return f"say     {segment.text}"
    if segment.kind == "tone":
        return f"tone    {segment.tone}"
    if segment.kind == "countdown":
        return f"count   {segment.count}{' (tick)' if segment.tone else ''}"
    if segment.kind == "rep":
        return f"rep     {segment.count}"
    label = f" ({segment.role})" if segment.role else ""
    return f"{segment.kind:<7} {format_duration(segment.seconds)}{label}"


def main() -> None:
    cli(prog_name="coach")
