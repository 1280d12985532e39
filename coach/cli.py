"""The ``coach`` command. Thin glue: domain errors become one line on stderr and an exit code
(2 for bad input, 1 for other failures); data goes to stdout, messages to stderr."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from coach import __version__
from coach.audiofile import audio_format, check_target
from coach.catalog import available_routines, resolve_routine
from coach.duration import clock, format_duration
from coach.errors import CoachError, ScriptError
from coach.plan import Plan, PlanOptions, Segment, SpeechTimer, build_plan, estimate_speech_seconds
from coach.routine import SIDES, Exercise, Level, Routine
from coach.render import render
from coach.script import load_routine
from coach.speech.cache import CachedVoice, PhraseCache, default_cache_dir
from coach.speech.profiles import (
    VoiceProfile,
    available_profiles,
    default_profile_name,
    engine_voices,
    make_voice,
    resolve_profile,
)

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


_voice_option = click.option(
    "--voice", metavar="NAME", default=None,
    help="A voice profile from 'coach voices'  [default: joe when the neural voice is installed, else system]")


def _cached_voice(profile: VoiceProfile) -> CachedVoice:
    """The profile's voice behind the phrase cache; nothing starts until a phrase is missing."""
    return CachedVoice(make_voice(profile), PhraseCache(default_cache_dir()))


@dataclass(frozen=True)
class _Timing:
    """How ``show`` times speech: exact lengths from the phrase cache, or estimates."""

    seconds: SpeechTimer
    kind: str  # "exact" when every phrase is cached, else "estimated"
    voice: str | None


def _cached_timing(routine: Routine, options: PlanOptions, voice: str | None) -> _Timing:
    """Phrase lengths from the cache for the voice; estimates for phrases not cached yet.

    Never synthesizes. Without ``--voice``, a default voice that cannot be resolved (a broken
    user profile) only means estimates; the render command reports that error.
    """
    try:
        profile = resolve_profile(voice)
    except CoachError:
        if voice is not None:
            raise
        return _Timing(estimate_speech_seconds, "estimated", None)
    cached = _cached_voice(profile)
    lengths = {text: cached.cached_seconds(text) for text in build_plan(routine, options).phrases()}

    def seconds(text: str) -> float:
        known = lengths.get(text)
        return known if known is not None else estimate_speech_seconds(text)

    exact = all(length is not None for length in lengths.values())
    return _Timing(seconds, "exact" if exact else "estimated", profile.name)


def _report_cache_warnings(cached: CachedVoice) -> None:
    for warning in cached.warnings:
        click.echo(f"Warning: {warning}", err=True)


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
@_voice_option
@click.option("--json", "as_json", is_flag=True, help="Print the routine and its plan as one JSON object.")
def show_command(routine_name: str, side: str, easier: bool, pace: float, voice: str | None, as_json: bool) -> None:
    """Show a routine and its session plan: everything the coach will say, and when.

    ROUTINE is a routine id from 'coach list' or the path of a script file. Once the routine
    has been rendered with the voice, speech lengths are exact (they come from the phrase
    cache); until then they are estimated from the word count.
    """
    ref = resolve_routine(routine_name)
    routine = load_routine(ref.path, ref.id)
    options = _options(routine, side, easier, pace)
    timing = _cached_timing(routine, options, voice)
    plan = build_plan(routine, options, speech_seconds=timing.seconds)
    if as_json:
        _emit_json({**_plan_json(plan), "speech_timing": timing.kind, "voice": timing.voice})
        return
    _print_plan(plan, exact=timing.kind == "exact")


class _ProgressBars:
    """Progress on stderr while rendering: one bar for speaking the phrases, one for writing audio.

    Only on a terminal: in a log or a pipe, progress lines would bury the one line that matters.
    """

    def __init__(self, output: Path) -> None:
        self._output = output
        self._hidden = not sys.stderr.isatty()
        self._bar: Any = None
        self._stage = ""

    def phrases(self, done: int, total: int) -> None:
        self._advance("phrases", f"Speaking {total} phrases", done, total)

    def audio(self, done_samples: int, total_samples: int) -> None:
        self._advance("audio", f"Writing {self._output}", done_samples, total_samples)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None

    def _advance(self, stage: str, label: str, done: int, total: int) -> None:
        if self._hidden:
            return
        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_eta=False)
            self._bar.render_progress()
        self._bar.update(done - self._bar.pos)


@cli.command("render")
@click.argument("routine_name", metavar="ROUTINE")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write, ending in .mp3 or .wav  [default: ROUTINE.mp3]")
@_voice_option
@_side_option
@_easier_option
@_pace_option
@click.option("--split", is_flag=True,
              help="Write one file per exercise (NAME-01-introduction.mp3 ...) and a NAME.m3u playlist.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary: output, duration_seconds, voice, chapters.")
def render_command(routine_name: str, output: Path | None, voice: str | None, side: str, easier: bool,
                   pace: float, split: bool, as_json: bool) -> None:
    """Render a routine to an audio file to play anywhere, e.g. on a phone.

    MP3 files carry chapters, one per exercise, so podcast and audiobook players can skip
    between exercises. The file appears only when it is complete: an interrupted render leaves
    nothing at the output path. Phrases are cached, so a second render is quick.
    """
    ref = resolve_routine(routine_name)
    routine = load_routine(ref.path, ref.id)
    options = _options(routine, side, easier, pace).checked_against(routine)
    output = output if output is not None else Path(f"{routine.id}.mp3")
    audio_format(output)  # an unknown suffix or a missing folder fails before any work
    for target in (output.with_suffix(".m3u"),) if split else (output,):
        check_target(target)
    profile = resolve_profile(voice)
    bars = _ProgressBars(output.with_suffix(".m3u") if split else output)
    with _cached_voice(profile) as cached:
        try:
            result = render(routine, options, cached, output, voice_name=profile.name, split=split, progress=bars)
        finally:
            bars.close()
            _report_cache_warnings(cached)
    if as_json:
        _emit_json(result.to_json())
        return
    for path in (*result.files, *((result.output,) if split else ())):
        click.echo(str(path))
    click.echo(f"{clock(result.duration_seconds)} with the {profile.name} voice, "
               f"{len(result.chapters)} chapters{', one file each' if split else ''}", err=True)


@cli.command("run")
@click.argument("routine_name", metavar="ROUTINE")
@_voice_option
@_side_option
@_easier_option
@_pace_option
@click.option("--device", metavar="NUMBER|NAME", default=None,
              help="Output device by number or part of its name, from 'coach devices'  [default: the system's]")
@click.option("--no-listen", is_flag=True,
              help="Keyboard control only. (Voice control is not built yet, so this is what happens anyway.)")
@click.option("--quiet", is_flag=True, help="Show nothing while the session runs; the coach still speaks.")
def run_command(routine_name: str, voice: str | None, side: str, easier: bool, pace: float,
                device: str | None, no_listen: bool, quiet: bool) -> None:
    """Run a routine live: the coach speaks and times every hold; keys control it.

    Keys: space pause/resume, n next, p previous, r repeat, t tingling (eases off at once),
    s or q stop (press again to end), + and - volume, ? time left. An exercise eased for
    tingling starts at its easier level next time; two sessions without a report at that
    level bring its usual level back. Every session is kept: see 'coach history'.
    """
    from coach.audio.devices import choose_output  # PortAudio is loaded only for live sessions
    from coach.history import History
    from coach.session.live import run_live

    ref = resolve_routine(routine_name)
    routine = load_routine(ref.path, ref.id)
    options = _options(routine, side, easier, pace).checked_against(routine)
    profile = resolve_profile(voice)
    output = choose_output(device)  # no sound server: fail before any synthesis
    bars = _ProgressBars(Path(routine.id))
    with History() as history, _cached_voice(profile) as cached:
        try:
            result = run_live(routine, options, cached, profile.name, device=output.index,
                              history=history, quiet=quiet, progress=bars)
        finally:
            bars.close()
            _report_cache_warnings(cached)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    slips = result.audio.device_underflows + result.audio.starved_callbacks
    if slips:
        click.echo(f"Warning: the sound output fell behind {slips} times, so some sounds came a little late; "
                   "a busy computer does this: close other programs, or try another --device", err=True)
    if result.reason == "red_flag":
        click.echo("The session ended on a warning sign. Please contact your clinician before exercising again.",
                   err=True)


@cli.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of devices.")
def devices_command(as_json: bool) -> None:
    """List audio devices, for 'coach run --device'."""
    from coach.audio.devices import devices_text

    click.echo(devices_text(as_json))


@cli.command("history")
@click.option("--csv", "as_csv", is_flag=True,
              help="Export every session for a physical therapist: one row per exercise and side.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many recent sessions to show.")
def history_command(as_csv: bool, limit: int) -> None:
    """Show recent sessions: how each ended, exercises done, eased and skipped, symptoms."""
    from coach.history import History, format_recent, write_csv

    with History() as history:
        if as_csv:
            stream = click.get_text_stream("stdout")
            write_csv(history.rows_for_export(), stream)
            return
        click.echo(format_recent(history.recent(limit)))


@cli.command("voices")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: default, profiles, engines.")
def voices_command(as_json: bool) -> None:
    """List the voice profiles (bundled, and yours in the user folder's voices/) and the voices
    each speech engine on this machine offers, for a profile's 'voice' setting."""
    profiles = available_profiles(on_invalid=lambda error: click.echo(f"Warning: skipping {error}", err=True))
    engines = engine_voices()
    default = default_profile_name()
    if as_json:
        _emit_json({
            "default": default,
            "profiles": [{**asdict(profile), "path": str(profile.path)} for profile in profiles],
            "engines": [asdict(engine) for engine in engines],
        })
        return
    click.echo("Voice profiles (use with --voice):")
    width = max((len(profile.name) for profile in profiles), default=4)
    for profile in profiles:
        marks = [mark for mark, on in (("default", profile.name == default), ("yours", profile.origin == "user")) if on]
        pitch = f", pitch {profile.pitch}" if profile.pitch is not None else ""
        click.echo(f"  {profile.name:<{width}}  {profile.engine} {profile.voice}, {profile.rate_wpm} wpm, "
                   f"volume {profile.volume:g}{pitch}{'  (' + ', '.join(marks) + ')' if marks else ''}")
    for engine in engines:
        click.echo(f"\n{engine.engine} voices:" if engine.available else f"\n{engine.engine}: unavailable: {engine.reason}")
        for listed in engine.voices:
            click.echo(f"  {listed.id:<24} {listed.name} ({', '.join(listed.languages)})")


@cli.group("cache")
def cache_group() -> None:
    """The phrase cache: speech already synthesized, kept so renders and sessions start quickly."""


@cache_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: path, phrases, bytes.")
def cache_info_command(as_json: bool) -> None:
    """Show where the phrase cache is and how much it holds."""
    cache = PhraseCache(default_cache_dir())
    phrases, size_bytes = cache.usage()
    if as_json:
        _emit_json({"path": str(cache.root), "phrases": phrases, "bytes": size_bytes})
        return
    click.echo(f"{cache.root}: {phrases} phrases, {size_bytes / 1e6:.1f} MB")


@cache_group.command("clear")
def cache_clear_command() -> None:
    """Delete every cached phrase; they are synthesized again when next needed."""
    cache = PhraseCache(default_cache_dir())
    phrases, size_bytes = cache.clear()
    click.echo(f"Removed {phrases} phrases ({size_bytes / 1e6:.1f} MB) from {cache.root}", err=True)


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
        "options": {"sides": list(plan.options.sides) if plan.options.sides else None,
                    "easier": sorted(plan.options.easier), "pace": plan.options.pace},
        "exercises": [_exercise_json(exercise, exercise.id in plan.options.easier) for exercise in routine.exercises],
        "plan": [segment.to_json() for segment in plan.segments],
    }


def _print_plan(plan: Plan, *, exact: bool = False) -> None:
    routine = plan.routine
    click.echo(f"{routine.title}  [{routine.id}, {'' if exact else 'about '}{clock(plan.total_seconds)}]")
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
    # Stopped by the system (SIGTERM) as by Ctrl-C: unwind, so temporary files are removed and
    # engines stopped, instead of dying on the spot.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cli(prog_name="coach")


def _exit_on_sigterm(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)


if __name__ == "__main__":
    main()
