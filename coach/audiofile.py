"""Audio files on disk: WAV and MP3 writers fed block by block, ID3 chapters, playlists, and the
temporary-file-then-rename dance that keeps a half-written file from ever appearing at the
target path.

Writers take int16 mono blocks as they are mixed; nothing here holds a whole session in memory.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Literal, Protocol, Sequence

import numpy as np

from coach.errors import CoachError, OptionError

AudioFormat = Literal["wav", "mp3"]
FORMATS_BY_SUFFIX: dict[str, AudioFormat] = {".wav": "wav", ".mp3": "mp3"}

# 64 kbit/s mono keeps speech clear at 480 KB a minute (a 25-minute session is 12 MB). Below
# 32 kbit/s LAME would also drop the sample rate to 16 kHz, dulling the chimes.
MP3_BIT_RATE_KBPS = 64
# LAME's own default (-q 3): near its best quality; -q 2 costs 40 % more time for no audible
# gain on speech at this bit rate.
MP3_QUALITY = 3
# LAME delays the audio by its encoder delay plus the decoder's (576 + 529 samples) and pads
# the end to a whole frame; lameenc writes no gapless header, so players keep both.
MP3_DECODER_DELAY_SAMPLES = 1105
MP3_FRAME_SAMPLES = 576  # MPEG-2 layer III frame at 22.05 kHz (1152 at 32 kHz and above)

TEMP_MARKER = ".coach-part"


@dataclass(frozen=True)
class Chapter:
    """A stretch of a session: the introduction or one exercise, in seconds from the start."""

    title: str
    start_seconds: float
    end_seconds: float

    def to_json(self) -> dict[str, object]:
        return {"title": self.title, "start": round(self.start_seconds, 3), "end": round(self.end_seconds, 3)}


@dataclass(frozen=True)
class Tags:
    """What a player shows for a file: title, album (the routine) and track number when split."""

    title: str
    album: str
    track: tuple[int, int] | None = None


def audio_format(path: Path) -> AudioFormat:
    """The format the output's suffix asks for; anything else is an ``OptionError``."""
    found = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        choices = " or ".join(FORMATS_BY_SUFFIX)
        raise OptionError(f"{path}: coach writes {choices} files; end the output name with one of them")
    return found


class AudioWriter(Protocol):
    """Receives int16 mono blocks in order; ``finish`` completes the file (it stays open);
    ``discard`` lets go of a file that will not be finished, without touching it further."""

    def write(self, block: np.ndarray) -> None: ...

    def finish(self) -> None: ...

    def discard(self) -> None: ...


class WavWriter:
    """16-bit mono WAV through the standard library; the header's sizes are fixed up on finish."""

    def __init__(self, file: BinaryIO, sample_rate_hz: int) -> None:
        self._wav = wave.open(file, "wb")  # noqa: SIM115 - closed in finish()
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate_hz)

    def write(self, block: np.ndarray) -> None:
        self._wav.writeframesraw(block.astype("<i2", copy=False).tobytes())

    def finish(self) -> None:
        self._wav.close()  # patches the RIFF and data sizes; leaves the file object open

    def discard(self) -> None:
        # wave patches the header when it is closed or garbage-collected; do it now, while the
        # file is still open, so a failed write does not end in "Exception ignored" noise later.
        with contextlib.suppress(Exception):
            self._wav.close()


class Mp3Writer:
    """Constant-bit-rate mono MP3 through LAME (lameenc), encoded as one stream.

    One stream matters: every separately encoded file starts with LAME's delay again, so
    concatenating them would put a gap between the parts.
    """

    def __init__(self, file: BinaryIO, sample_rate_hz: int) -> None:
        import lameenc  # imported here so WAV output and `coach show` never load it

        self._file = file
        self._encoder = lameenc.Encoder()
        self._encoder.set_channels(1)  # the default is stereo, which would halve the duration
        self._encoder.set_in_sample_rate(sample_rate_hz)  # the default 44.1 kHz would play 2x fast
        self._encoder.set_out_sample_rate(sample_rate_hz)
        self._encoder.set_bit_rate(MP3_BIT_RATE_KBPS)
        self._encoder.set_quality(MP3_QUALITY)
        self._encoder.silence()  # LAME prints its settings on stdout otherwise

    def write(self, block: np.ndarray) -> None:
        self._file.write(self._encoder.encode(block.astype("<i2", copy=False).tobytes()))

    def finish(self) -> None:
        self._file.write(self._encoder.flush())

    def discard(self) -> None:
        pass  # the encoder holds no file; the temporary file is removed by its owner


def write_audio(kind: AudioFormat, file: BinaryIO, sample_rate_hz: int, blocks: Iterable[np.ndarray]) -> None:
    """Encode ``blocks`` into ``file`` as they come."""
    writer: AudioWriter = WavWriter(file, sample_rate_hz) if kind == "wav" else Mp3Writer(file, sample_rate_hz)
    try:
        for block in blocks:
            writer.write(block)
        writer.finish()
    except BaseException:
        writer.discard()
        raise


def write_id3(path: Path, tags: Tags, chapters: Sequence[Chapter] = ()) -> None:
    """Tag an MP3 file: title, album, track, and one CHAP frame per chapter under a CTOC.

    ID3v2.3, which more players read than v2.4. Chapter times are in milliseconds of the
    session timeline (players that ignore LAME's delay start audio ~50 ms later; well under
    what a listener notices). The table of contents lists chapters in time order: mutagen
    writes CHAP frames in size order, and spec-following players use the CTOC's order.
    """
    from mutagen.id3 import CHAP, CTOC, ID3, TALB, TCON, TIT2, TPE1, TRCK, CTOCFlags

    id3 = ID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TALB(encoding=3, text=tags.album))
    id3.add(TPE1(encoding=3, text="coach"))
    id3.add(TCON(encoding=3, text="Speech"))
    if tags.track is not None:
        id3.add(TRCK(encoding=3, text=f"{tags.track[0]}/{tags.track[1]}"))
    if chapters:
        ids = [f"chp{number}" for number in range(len(chapters))]
        id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                     child_element_ids=ids, sub_frames=[TIT2(encoding=3, text="Exercises")]))
        for element_id, chapter in zip(ids, chapters):
            id3.add(CHAP(element_id=element_id,
                         start_time=round(chapter.start_seconds * 1000), end_time=round(chapter.end_seconds * 1000),
                         sub_frames=[TIT2(encoding=3, text=chapter.title)]))
    id3.save(str(path), v2_version=3)


def write_playlist(file: BinaryIO, entries: Sequence[tuple[str, float, str]]) -> None:
    """An extended M3U playlist: (file name relative to the playlist, seconds, title) per entry."""
    lines = ["#EXTM3U"]
    for name, seconds, title in entries:
        lines += [f"#EXTINF:{round(seconds)},{title}", name]
    file.write(("\n".join(lines) + "\n").encode("utf-8"))


class AtomicOutputs:
    """Files written under temporary names beside their targets and renamed only on ``commit``.

    Temporary names are ``.<target name>.<pid>.coach-part`` in the target's folder, so the rename
    stays on one file system and is atomic. Leaving the ``with`` block without ``commit`` (an
    error, Ctrl-C) deletes them; a process killed outright leaves its temporary file, which the
    next render to the same target removes once that process is gone. Targets never see a
    half-written file. Every OS error becomes a one-line ``CoachError`` naming the file and a fix.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for temporary, _ in self._pending:
            with contextlib.suppress(OSError):
                temporary.unlink()
        self._pending.clear()

    @contextlib.contextmanager
    def open(self, target: Path) -> Iterator[tuple[BinaryIO, Path]]:
        """A new temporary file for ``target``: yields the open file and its path."""
        check_target(target)
        folder = target.parent
        _remove_stale_parts(target)
        temporary = folder / f".{target.name}.{os.getpid()}{TEMP_MARKER}"
        with _os_errors(target):
            file = open(temporary, "w+b")  # noqa: SIM115 - closed below
        self._pending.append((temporary, target))
        with _os_errors(target), file:  # closing flushes, which can fail too
            yield file, temporary

    def commit(self) -> None:
        """Rename every temporary file onto its target, in the order they were opened (a
        playlist opened last appears only once the files it lists are in place)."""
        while self._pending:
            temporary, target = self._pending[0]
            with _os_errors(target):
                _sync_file(temporary)  # the data reaches the disk before the rename shows it
                os.replace(temporary, target)
            self._pending.pop(0)
            _sync_folder(target.parent)


def check_target(target: Path) -> None:
    """Fail early, naming the fix, when ``target`` cannot be a file: no folder, or a folder."""
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise CoachError(f"cannot write {target}: {folder} is a file, not a folder; check the output path")
    if not folder.is_dir():
        raise CoachError(f"cannot write {target}: the folder {folder} does not exist; create it first or choose another output")
    if target.is_dir():
        raise CoachError(f"cannot write {target}: it is a folder; give a file name ending in .mp3 or .wav")


def _remove_stale_parts(target: Path) -> None:
    """Delete temporary files for ``target`` left by renders that were killed outright."""
    for part in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_MARKER}"):
        pid_text = part.name[len(target.name) + 2 : -len(TEMP_MARKER)]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                part.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


def _sync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or choose another output folder",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another output folder",
    errno.EFBIG: "the file is too large for this file system; choose another output folder",
    errno.EACCES: "you may not write there; choose another output folder",
    errno.EPERM: "you may not write there; choose another output folder",
    errno.EROFS: "the file system is read-only; choose another output folder",
    errno.ENOTDIR: "part of the path is a file, not a folder; check the output path",
    errno.EISDIR: "the output is a folder; give a file name ending in .mp3 or .wav",
    errno.ENOENT: "the folder does not exist; create it first or choose another output",
}


@contextlib.contextmanager
def _os_errors(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        fix = _FIXES.get(error.errno or 0, "check the output path and free disk space")
        raise CoachError(f"cannot write {target}: {error.strerror or error}; {fix}") from None
