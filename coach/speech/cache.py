"""The phrase cache: synthesized phrases kept on disk, so a routine is spoken once per voice.

Layout under the cache folder (``default_cache_dir()``)::

    <voice hash>/voice.json          the voice's full cache key, for people to read
    <voice hash>/<text hash>.wav     one phrase: 16-bit mono PCM WAV that any player opens

``<voice hash>`` is 16 hex digits of the SHA-256 of the voice's ``cache_key()``, ``<text hash>``
32 hex digits (128 bits) of the SHA-256 of the text. Each WAV also carries its text (INFO
``INAM``, the title players show) and its voice key (INFO ``ICMT``), and both are compared on
every read: a hash collision, or a file copied into the wrong folder, is then a miss rather
than the wrong words. The comparison costs nothing extra because the header is read anyway.

Entries are written to a temporary file in the same folder and renamed over the final name
(``os.replace``), so readers and other writers see a whole entry or none. There is no fsync:
a file torn by a power cut fails the header checks made on every read and is a miss, like
any corrupt entry, so the cost of an fsync per phrase would buy nothing.

Failures to write (read-only folder, full disk) never fail synthesis: ``PhraseCache.put``
records one line in ``PhraseCache.warnings`` (the first failure only) and returns. The
library prints nothing. A list rather than a callback: the caller (the CLI) reads it when it
is ready to report, on stderr after a render or a session, so a warning never lands in the
middle of a live session's display or of ``--json`` output.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from coach.home import coach_home
from coach.speech.clip import Clip, Voice

VOICE_FILE_NAME = "voice.json"
_VOICE_HASH_DIGITS = 16
_TEXT_HASH_DIGITS = 32
_VOICE_DIR_RE = re.compile(rf"[0-9a-f]{{{_VOICE_HASH_DIGITS}}}")
_ENTRY_RE = re.compile(rf"[0-9a-f]{{{_TEXT_HASH_DIGITS}}}\.wav")
# Temporary files start with a dot and end in .tmp, so they never match _ENTRY_RE.
_TEMP_RE = re.compile(r"\..+\.tmp")
# Header chunks (fmt, LIST) are a few hundred bytes; a larger one means garbage, and this
# bound keeps a garbage size field from making us allocate gigabytes. (A phrase of over a
# million bytes of text would be stored but always miss, which is harmless.)
_MAX_HEADER_CHUNK_BYTES = 1 << 20


def default_cache_dir() -> Path:
    return coach_home() / "cache" / "phrases"


class PhraseCache:
    """Synthesized phrases on disk, keyed by (voice cache key, text).

    A missing, corrupt or unreadable entry is a miss (``None``), never an exception; the next
    ``put`` replaces it. ``warnings`` collects one line, naming the fix, the first time a
    ``put`` cannot write; the caller decides where to show it.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.warnings: list[str] = []

    def entry_path(self, voice_key: str, text: str) -> Path:
        """Where the phrase's WAV file is (or would be)."""
        return self._voice_dir(voice_key) / f"{_digest(_encode(text), _TEXT_HASH_DIGITS)}.wav"

    def get(self, voice_key: str, text: str) -> Clip | None:
        """The stored clip, sample for sample as it was put, or None on a miss."""
        try:
            with open(self.entry_path(voice_key, text), "rb") as wav:
                rate_hz, data_bytes = _read_wav_header(wav, _encode(text), _encode(voice_key))
                samples = np.empty(data_bytes // 2, dtype="<i2")
                if wav.readinto(memoryview(samples).cast("B")) != data_bytes:
                    return None  # cut short while we read it; the header said otherwise
        except (OSError, _BadEntry):
            return None
        return Clip(samples.astype(np.int16, copy=False), rate_hz)

    def seconds(self, voice_key: str, text: str) -> float | None:
        """The stored clip's length in seconds from the WAV header alone, or None on a miss.

        Equal to ``get(...).seconds`` exactly; the samples are not read.
        """
        try:
            with open(self.entry_path(voice_key, text), "rb") as wav:
                rate_hz, data_bytes = _read_wav_header(wav, _encode(text), _encode(voice_key))
        except (OSError, _BadEntry):
            return None
        return (data_bytes // 2) / rate_hz  # the same division as Clip.seconds

    def put(self, voice_key: str, text: str, clip: Clip) -> None:
        """Store the clip, replacing any entry for the same key and text; never raises OSError."""
        voice_dir = self._voice_dir(voice_key)
        try:
            voice_dir.mkdir(parents=True, exist_ok=True)
            voice_file = voice_dir / VOICE_FILE_NAME
            if not voice_file.exists():
                _write_atomically(voice_file, lambda out: out.write(_encode(voice_key + "\n")))
            _write_atomically(
                self.entry_path(voice_key, text), lambda out: _write_wav(out, clip, _encode(text), _encode(voice_key))
            )
        except OSError as error:
            if not self.warnings:
                reason = error.strerror or str(error)
                self.warnings.append(
                    f"cannot save speech to the phrase cache {self.root} ({reason}); "
                    "phrases are synthesized again each time until that folder is writable and has free space"
                )

    def usage(self) -> tuple[int, int]:
        """(phrase entries, bytes of all the cache's files, including voice.json and leftover temporaries)."""
        entries = total_bytes = 0
        for path in self._own_files():
            try:
                total_bytes += path.stat().st_size
            except OSError:  # removed meanwhile by another process
                continue
            entries += _ENTRY_RE.fullmatch(path.name) is not None
        return entries, total_bytes

    def clear(self) -> tuple[int, int]:
        """Remove every entry; return (phrase entries, bytes) removed, as ``usage`` counts them.

        Only files the cache names itself are removed, so pointing ``root`` at the wrong folder
        cannot delete anything else. A missing folder is already clear.
        """
        entries = total_bytes = 0
        voice_dirs: set[Path] = set()
        for path in self._own_files():
            try:
                size = path.stat().st_size
                path.unlink()
            except OSError:
                continue
            entries += _ENTRY_RE.fullmatch(path.name) is not None
            total_bytes += size
            voice_dirs.add(path.parent)
        for voice_dir in voice_dirs:
            try:
                voice_dir.rmdir()
            except OSError:  # another process is writing into it, or someone else's file is there
                pass
        return entries, total_bytes

    def _voice_dir(self, voice_key: str) -> Path:
        # 64 bits name the folder: a person has a few dozen voice keys, and the key stored in
        # each WAV turns even a collision into misses, not wrong audio.
        return self.root / _digest(_encode(voice_key), _VOICE_HASH_DIGITS)

    def _own_files(self) -> list[Path]:
        files = []
        try:
            voice_dirs = [entry for entry in os.scandir(self.root) if _VOICE_DIR_RE.fullmatch(entry.name)]
        except OSError:  # no cache folder yet, or not a folder
            return []
        for voice_dir in voice_dirs:
            try:
                names = [entry.name for entry in os.scandir(voice_dir.path) if entry.is_file(follow_symlinks=False)]
            except OSError:
                continue
            files += [
                Path(voice_dir.path, name)
                for name in names
                if name == VOICE_FILE_NAME or _ENTRY_RE.fullmatch(name) or _TEMP_RE.fullmatch(name)
            ]
        return files


class CachedVoice:
    """A voice whose phrases come from a phrase cache when they are there.

    ``hits`` and ``misses`` count phrases served from the cache and synthesized. The inner
    voice's ``cache_key()`` is asked once and kept: a voice's settings are fixed when it is
    made, and asking again (a package-metadata lookup) would cost more than the hit itself.
    """

    def __init__(self, voice: Voice, cache: PhraseCache) -> None:
        self.voice = voice
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._key: str | None = None

    @property
    def sample_rate_hz(self) -> int:
        """The inner voice's rate; this may start its engine (the system voice's worker)."""
        return self.voice.sample_rate_hz

    @property
    def warnings(self) -> list[str]:
        """The cache's warnings (at most one line, naming the fix), for the caller to show."""
        return self.cache.warnings

    def cache_key(self) -> str:
        if self._key is None:
            self._key = self.voice.cache_key()
        return self._key

    def synthesize(self, text: str) -> Clip:
        """The cached clip, or a new one from the inner voice, stored for next time."""
        key = self.cache_key()
        clip = self.cache.get(key, text)
        if clip is not None:
            self.hits += 1
            return clip
        self.misses += 1
        clip = self.voice.synthesize(text)
        self.cache.put(key, text, clip)
        return clip

    def cached_seconds(self, text: str) -> float | None:
        """The phrase's length if it is cached (read from the header alone), else None."""
        return self.cache.seconds(self.cache_key(), text)

    def close(self) -> None:
        self.voice.close()

    def __enter__(self) -> CachedVoice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _BadEntry(Exception):
    """A cache file that is not a whole entry for the asked key and text."""


def _encode(text: str) -> bytes:
    # surrogatepass: any Python str can be a phrase, even one with a lone surrogate.
    return text.encode("utf-8", "surrogatepass")


def _digest(data: bytes, hex_digits: int) -> str:
    return hashlib.sha256(data).hexdigest()[:hex_digits]


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(file)`` into a temporary sibling, then rename it over ``path``."""
    # A fresh random name per writer: two processes writing the same entry never share a file.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "xb") as out:
            write(out)
        os.replace(temp, path)
    except BaseException:  # including KeyboardInterrupt: leave no temporary behind
        try:
            temp.unlink()
        except OSError:
            pass
        raise


def _info_field(field_id: bytes, value: bytes) -> bytes:
    body = value + b"\0"  # INFO values are NUL-terminated strings
    return field_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _write_wav(out: BinaryIO, clip: Clip, text: bytes, voice_key: bytes) -> None:
    """RIFF WAVE: fmt (PCM, mono, 16 bit), LIST/INFO (title, comment, software), data."""
    samples = np.ascontiguousarray(clip.samples, dtype="<i2")
    rate_hz = clip.sample_rate_hz
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, 2 * rate_hz, 2, 16)
    info = b"INFO" + _info_field(b"INAM", text) + _info_field(b"ICMT", voice_key) + _info_field(b"ISFT", b"coach")
    data_bytes = samples.nbytes
    header = b"".join(
        [
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            b"LIST" + struct.pack("<I", len(info)) + info,
            b"data" + struct.pack("<I", data_bytes),
        ]
    )
    out.write(b"RIFF" + struct.pack("<I", 4 + len(header) + data_bytes) + b"WAVE" + header)
    out.write(memoryview(samples).cast("B"))


def _read_wav_header(wav: BinaryIO, text: bytes, voice_key: bytes) -> tuple[int, int]:
    """Check a cache WAV whole (sizes, format, text and key) from its header; (rate in Hz, data bytes).

    Leaves ``wav`` at the first sample.
    """
    file_bytes = os.fstat(wav.fileno()).st_size
    head = wav.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        raise _BadEntry("not a WAV file")
    if struct.unpack("<I", head[4:8])[0] + 8 != file_bytes:  # catches truncation from the header alone
        raise _BadEntry("the RIFF size does not match the file size")
    fmt = info = None
    while True:
        chunk_head = wav.read(8)
        if len(chunk_head) < 8:
            raise _BadEntry("no data chunk")
        chunk_id, chunk_bytes = chunk_head[:4], struct.unpack("<I", chunk_head[4:])[0]
        if chunk_id == b"data":
            break
        if chunk_bytes > _MAX_HEADER_CHUNK_BYTES:
            raise _BadEntry("a header chunk is too large")
        body = wav.read(chunk_bytes + (chunk_bytes & 1))
        if len(body) < chunk_bytes:
            raise _BadEntry("a header chunk is cut short")
        if chunk_id == b"fmt ":
            fmt = body[:chunk_bytes]
        elif chunk_id == b"LIST":
            info = body[:chunk_bytes]
    if fmt is None or len(fmt) < 16 or info is None:
        raise _BadEntry("no fmt or LIST chunk")
    tag, channels, rate_hz, byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if (tag, channels, block_align, bits) != (1, 1, 2, 16) or rate_hz <= 0 or byte_rate != 2 * rate_hz:
        raise _BadEntry("not 16-bit mono PCM")
    fields = _info_fields(info)
    if fields.get(b"INAM") != text + b"\0" or fields.get(b"ICMT") != voice_key + b"\0":
        raise _BadEntry("the entry holds another text or voice")
    if chunk_bytes % 2 or wav.tell() + chunk_bytes > file_bytes:
        raise _BadEntry("the data chunk is cut short")
    return rate_hz, chunk_bytes


def _info_fields(info: bytes) -> dict[bytes, bytes]:
    if info[:4] != b"INFO":
        raise _BadEntry("the LIST chunk is not INFO")
    fields, at = {}, 4
    while at + 8 <= len(info):
        field_id, field_bytes = info[at : at + 4], struct.unpack("<I", info[at + 4 : at + 8])[0]
        fields[field_id] = info[at + 8 : at + 8 + field_bytes]
        at += 8 + field_bytes + (field_bytes & 1)
    return fields
