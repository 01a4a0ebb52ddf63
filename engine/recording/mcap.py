"""MCAP recordings: the same records in the container viewers such as Foxglove open.

How a recording maps onto MCAP:

- one protobuf schema record: the message's full name and its serialized
  ``FileDescriptorSet``, as the MCAP protobuf profile wants;
- one channel per message kind, topic ``/<kind>`` (records whose kind cannot
  be read go to ``/_undecodable``, without a schema, so nothing is lost);
- each record's bytes exactly as received, log time = receive time,
  publish time = the message's own timestamp where it has one (else the
  receive time), sequence = the record's number in the recording;
- chunks compressed with zstd (or lz4, or none) and bounded in size
  (``chunk_size``, 1 MiB by default: readers load a whole chunk at once);
  message indexes, chunk indexes, statistics and the summary always written,
  so a viewer seeks at once and ``--from/--to`` reads only the chunks needed;
- metadata ``cuecap.manifest`` (the manifest as JSON) and ``cuecap.schema``
  (the kind rule), so converting back gives the same recording.

Receive times are float seconds in recordings and integer nanoseconds in
MCAP. For epoch times (after mid-1970) a double's resolution is coarser than
a nanosecond, so the conversion is exact both ways; earlier (relative) times
would round, and the writer then keeps the exact times in metadata
``cuecap.times`` so the round trip stays exact.
"""

from __future__ import annotations

import enum
import json
import math
import os
import struct
import sys
from array import array
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

from mcap.exceptions import EndOfFile, McapError
from mcap.reader import SeekingReader
from mcap.records import Channel, Message, Metadata
from mcap.records import Schema as McapSchema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, IndexType, Writer

from engine.core.clock import due
from engine.core.frame import Frame, Gap, frame_class
from engine.core.schema import PURPLEDROP, Schema, SchemaError, from_descriptor_set
from engine.recording.format import MCAP_MAGIC, RecordingError, check_readable
from engine.recording.writer import Manifest

MCAP_SUFFIX = ".mcap"
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20
# Largest MCAP record a reader accepts (a chunk, usually): bounds the memory of a read.
MAX_RECORD_SIZE = 256 << 20
UNDECODABLE_TOPIC = "/_undecodable"
META_MANIFEST = "cuecap.manifest"
META_SCHEMA = "cuecap.schema"
META_TIMES = "cuecap.times"
LIBRARY = "cuecap"
_EXACT_FROM = float(1 << 24)  # seconds from which a double's step exceeds 1 ns


class Compression(enum.Enum):
    """How MCAP chunks are compressed."""

    ZSTD = "zstd"
    LZ4 = "lz4"
    NONE = "none"


_COMPRESSION = {
    Compression.ZSTD: CompressionType.ZSTD,
    Compression.LZ4: CompressionType.LZ4,
    Compression.NONE: CompressionType.NONE,
}


def to_ns(seconds: float) -> int:
    """Nanoseconds of ``seconds``, rounded once (``seconds * 1e9`` would round twice)."""
    whole = math.floor(seconds)
    return whole * 1_000_000_000 + round((seconds - whole) * 1e9)  # the difference is exact


def to_seconds(ns: int) -> float:
    """The double nearest ``ns`` nanoseconds (int / int rounds once, correctly)."""
    return ns / 1_000_000_000


def _exact(seconds: float) -> bool:
    return to_seconds(to_ns(seconds)) == seconds


class McapRecordingWriter:
    """Writes records to a new MCAP file; the same calls as ``RecordingWriter``.

    The manifest is kept beside the file as ``NAME.mcap.json`` while
    recording (a crash leaves it, and the chunks written so far) and goes into
    the MCAP itself on ``close``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        recorder: str = "",
        source: str = "",
        opened_at: float | None = None,
        start_reason: str = "",
        flush_interval: float = 0.5,
        manifest_interval: float = 5.0,
        extra: dict[str, Any] | None = None,
        schema: Schema = PURPLEDROP,
        compression: Compression = Compression.ZSTD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise RecordingError(f"{path}: chunk size {chunk_size} is not in 1 B .. 64 MiB")
        self.path = Path(path)
        self.manifest_path = Path(f"{self.path}.json")
        self.schema = schema
        self.flush_interval = flush_interval
        self.manifest_interval = manifest_interval
        self.closed = False
        self._manifest = Manifest(
            path=str(self.path),
            recorder=recorder,
            source=source,
            opened_at=opened_at,
            start_reason=start_reason,
            extra=dict(extra or {}),
            schema=None if schema is PURPLEDROP else schema.to_dict(),
        )
        self._counts: dict[str, int] = {}
        self._records = 0
        self._last_flush = opened_at
        self._last_manifest = opened_at
        # Receive times that would not survive nanoseconds (before mid-1970: relative
        # clocks), kept as doubles from the first such one on (8 bytes a record; epoch
        # times never need it), with the record number they start at.
        self._times = array("d")
        self._times_from: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] = open(self.path, "xb")  # noqa: SIM115
        except FileExistsError:
            raise RecordingError(
                f"{self.path}: already exists; refusing to overwrite a recording"
            ) from None
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot create: {exc.strerror or exc}") from None
        try:
            self._writer = Writer(
                self._file,
                chunk_size=chunk_size,
                compression=_COMPRESSION[compression],
                index_types=IndexType.ALL,
                repeat_channels=True,
                repeat_schemas=True,
                use_chunking=True,
                use_statistics=True,
                use_summary_offsets=True,
            )
            self._writer.start(profile="", library=LIBRARY)
            self._schema_id = self._writer.register_schema(
                name=schema.name, encoding="protobuf", data=schema.descriptor_set()
            )
            self._write_manifest()
        except (OSError, McapError) as exc:
            self._file.close()
            raise RecordingError(f"{self.path}: cannot start MCAP: {exc}") from None
        self._channels: dict[str | None, int] = {}
        self._timestamped = schema.timestamped

    # -- writing ---------------------------------------------------------------

    def _channel(self, kind: str | None) -> int:
        channel = self._channels.get(kind)
        if channel is None:
            if kind is None:
                channel = self._writer.register_channel(
                    topic=UNDECODABLE_TOPIC, message_encoding="protobuf", schema_id=0
                )
            else:
                channel = self._writer.register_channel(
                    topic=f"/{kind}",
                    message_encoding="protobuf",
                    schema_id=self._schema_id,
                    metadata={"cuecap.kind": kind},
                )
            self._channels[kind] = channel
        return channel

    def write_frame(self, frame: Frame) -> None:
        """Append one record; its kind picks the channel, its timestamp the publish time."""
        kind = frame.kind
        publish: float | None = None
        if kind in self._timestamped:
            try:
                publish = frame.timestamp
            except ValueError:  # does not decode: still recorded, on its kind's channel
                publish = None
        self._add(frame.raw, frame.time, kind, publish)

    def write(self, raw: bytes, time: float) -> None:
        """Append one record received at ``time`` (its kind read off the bytes)."""
        self.write_frame(frame_class(self.schema)(raw, time, self._records))

    def _add(self, raw: bytes, time: float, kind: str | None, publish: float | None) -> None:
        log_time = to_ns(time)
        if self._times_from is not None:
            self._times.append(time)
        elif time < _EXACT_FROM and not _exact(time):
            self._times_from = self._records
            self._times.append(time)
        try:
            self._writer.add_message(
                channel_id=self._channel(kind),
                log_time=log_time,
                data=raw,
                publish_time=to_ns(publish) if publish is not None else log_time,
                sequence=self._records & 0xFFFFFFFF,
            )
        except OSError as exc:
            raise RecordingError(f"{self.path}: write failed: {exc.strerror or exc}") from None
        self._records += 1
        name = kind or "unknown"
        self._counts[name] = self._counts.get(name, 0) + 1
        m = self._manifest
        if m.first_time is None:
            m.first_time = time
            if self._last_flush is None:
                self._last_flush = self._last_manifest = time
        m.last_time = time
        if self._last_flush is not None and time - self._last_flush >= self.flush_interval:
            self.flush(time)

    def note_gap(self, gap: Gap) -> None:
        self._manifest.note_gap(gap)

    def note_activity(self, time: float) -> None:
        self._manifest.note_activity(time)

    @property
    def records(self) -> int:
        return self._records

    @property
    def bytes(self) -> int:
        """Bytes of the MCAP file so far (chunks still being filled are not in it yet)."""
        try:
            return self.path.stat().st_size if self.closed else self._file.tell()
        except (OSError, ValueError):
            return 0

    # -- durability ------------------------------------------------------------

    def flush(self, now: float | None = None) -> None:
        """Close the open chunk and push it to the OS, so a crash loses less."""
        try:
            self._writer.flush()  # type: ignore[no-untyped-call]
            self._file.flush()
        except OSError as exc:
            raise RecordingError(f"{self.path}: flush failed: {exc.strerror or exc}") from None
        if now is not None:
            self._last_flush = now
            if due(self._last_manifest, now, self.manifest_interval):
                self._last_manifest = now
                self._write_manifest()

    def maybe_flush(self, now: float) -> None:
        if due(self._last_flush, now, self.flush_interval):
            self.flush(now)

    def _sync(self) -> Manifest:
        m = self._manifest
        m.records = self._records
        m.bytes = self.bytes
        m.counts = dict(self._counts)
        return m

    def _write_manifest(self) -> None:
        m = self._sync()
        tmp = self.manifest_path.with_name(self.manifest_path.name + ".tmp")
        try:
            tmp.write_text(m.to_json(), encoding="utf-8")
            os.replace(tmp, self.manifest_path)
        except OSError as exc:
            raise RecordingError(
                f"{self.manifest_path}: cannot write manifest: {exc.strerror or exc}"
            ) from None

    @property
    def manifest(self) -> Manifest:
        return self._sync()

    def close(self, stop_reason: str = "", closed_at: float | None = None) -> Manifest:
        """Write the summary and indexes and the final manifest. Safe to call twice."""
        if self.closed:
            return self._manifest
        self.closed = True
        m = self._sync()
        m.stop_reason = stop_reason
        m.closed_at = closed_at if closed_at is not None else m.last_time
        m.complete = True
        errors: list[str] = []
        try:
            self._writer.add_metadata(META_MANIFEST, {"json": m.to_json()})
            self._writer.add_metadata(META_SCHEMA, _kind_rule(self.schema))
            if self._times_from is not None:
                times = array("d", self._times)
                if sys.byteorder != "little":
                    times.byteswap()
                self._writer.add_metadata(
                    META_TIMES, {"first": str(self._times_from), "doubles": times.tobytes().hex()}
                )
            self._writer.finish()  # type: ignore[no-untyped-call]
        except (OSError, McapError) as exc:
            errors.append(f"{self.path}: cannot finish MCAP: {exc}")
        try:
            self._file.close()
        except OSError as exc:
            errors.append(f"{self.path}: {exc.strerror or exc}")
        try:
            self._write_manifest()
        except RecordingError as exc:
            errors.append(str(exc))
        if errors:
            raise RecordingError("; ".join(errors))
        return m

    def __enter__(self) -> McapRecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(stop_reason="error" if exc_info[0] else "closed")


def _kind_rule(schema: Schema) -> dict[str, str]:
    """The schema's kind rule as MCAP metadata (strings only); its bytes are the schema record."""
    return {k: str(v) for k, v in schema.to_dict().items() if k != "descriptor_set"}


# -- reading ---------------------------------------------------------------------


def _stream_records(f: IO[bytes]) -> Iterator[Any]:
    return StreamReader(f, skip_magic=False, record_size_limit=MAX_RECORD_SIZE).records


class McapRecordingReader:
    """Frames of an MCAP file, in file order; the same attributes as ``RecordingReader``.

    The schema is the file's protobuf schema (with the kind rule from
    ``cuecap.schema`` metadata, when the file is ours). A file with several
    protobuf schemas needs ``schema_name`` to say which one's channels to read.
    ``frames_between`` uses the chunk index to read only the chunks of a time range.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        source: str | None = None,
        schema: Schema | None = None,
        *,
        schema_name: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.size = check_readable(self.path)
        self.source = source if source is not None else self.path.name
        self.records = 0
        self.bytes = 0
        self.truncated_bytes = 0
        self.estimated_times = 0
        self.index_problem: str | None = None
        self.metadata: dict[str, dict[str, str]] = {}
        self.summary: Any = None
        with open(self.path, "rb") as f:
            if f.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
                raise RecordingError(f"{self.path}: not an MCAP file")
            f.seek(0)
            self._scan_header(f)
        self._mcap_schemas, self._channels = self._schemas_and_channels()
        self.schema, self._schema_id = self._pick(schema, schema_name)
        self._topics = [
            c.topic
            for c in self._channels.values()
            if c.schema_id in (self._schema_id, 0) and c.message_encoding == "protobuf"
        ]
        exact = self.metadata.get(META_TIMES, {})
        self._exact_times: list[float] | None = None
        self._exact_from = 0
        if exact.get("doubles"):
            times = array("d", bytes.fromhex(exact["doubles"]))
            if sys.byteorder != "little":
                times.byteswap()
            self._exact_times = times.tolist()
            self._exact_from = int(exact.get("first", 0))

    # -- opening -------------------------------------------------------------------

    def _scan_header(self, f: IO[bytes]) -> None:
        """The summary (when the file was closed) and the metadata."""
        reader = SeekingReader(f, record_size_limit=MAX_RECORD_SIZE)
        try:
            self.summary = reader.get_summary()
            if self.summary is not None:
                for record in reader.iter_metadata():
                    self.metadata[record.name] = dict(record.metadata)
        except (McapError, struct.error, ValueError, EOFError):
            self.summary = None
        if self.summary is None:
            self.index_problem = "no summary (the file was not closed); reading it through"

    def _schemas_and_channels(self) -> tuple[dict[int, McapSchema], dict[int, Channel]]:
        if self.summary is not None:
            return dict(self.summary.schemas), dict(self.summary.channels)
        schemas: dict[int, McapSchema] = {}
        channels: dict[int, Channel] = {}
        with open(self.path, "rb") as f:
            try:
                for record in _stream_records(f):
                    if isinstance(record, McapSchema):
                        schemas[record.id] = record
                    elif isinstance(record, Channel):
                        channels[record.id] = record
                    elif isinstance(record, Metadata):
                        self.metadata[record.name] = dict(record.metadata)
            except (McapError, struct.error, ValueError, EOFError):
                pass  # cut short: what came before is what there is
        return schemas, channels

    def _pick(self, given: Schema | None, name: str | None) -> tuple[Schema, int]:
        protobuf = {i: s for i, s in self._mcap_schemas.items() if s.encoding == "protobuf"}
        if name is not None:
            chosen = {i: s for i, s in protobuf.items() if s.name == name}
            if not chosen:
                listing = ", ".join(sorted({s.name for s in protobuf.values()})) or "none"
                raise RecordingError(
                    f"{self.path}: no protobuf schema {name!r} (it has: {listing})"
                )
            protobuf = chosen
        if not protobuf:
            raise RecordingError(f"{self.path}: holds no protobuf schema; cuecap reads protobuf")
        names = sorted({s.name for s in protobuf.values()})
        if len(names) > 1:
            raise RecordingError(
                f"{self.path}: holds {len(names)} protobuf schemas ({', '.join(names)}); "
                f"`cuecap log convert {self.path} OUT.bin --schema NAME` takes out one"
            )
        schema_id, record = next(iter(protobuf.items()))
        if given is not None:
            return given, schema_id
        rule = self.metadata.get(META_SCHEMA, {})
        try:
            schema = from_descriptor_set(
                record.data,
                record.name,
                kind=rule.get("kind"),
                oneof=rule.get("oneof"),
                image=rule.get("image"),
                timestamp=rule.get("timestamp"),
                origin=str(self.path),
            )
        except SchemaError as exc:
            raise RecordingError(f"{self.path}: schema {record.name}: {exc}") from None
        return schema, schema_id

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The manifest the file carries (or the one beside it while it was being written)."""
        entry = self.metadata.get(META_MANIFEST)
        text = entry.get("json") if entry else None
        if text is None:
            try:
                text = Path(f"{self.path}.json").read_text(encoding="utf-8")
            except OSError:
                return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def has_index(self) -> bool:
        return self.summary is not None and bool(self.summary.chunk_indexes)

    @property
    def channels(self) -> dict[int, Channel]:
        return dict(self._channels)

    def first_time(self) -> float | None:
        stats = self.summary.statistics if self.summary is not None else None
        if stats is None or not stats.message_count:
            return None
        return self._time(stats.message_start_time, 0)

    def last_time(self) -> float | None:
        stats = self.summary.statistics if self.summary is not None else None
        if stats is None or not stats.message_count:
            return None
        return self._time(stats.message_end_time, stats.message_count - 1)

    def _time(self, log_time: int, seq: int) -> float:
        exact = self._exact_times
        if exact is not None:
            i = seq - self._exact_from
            if 0 <= i < len(exact) and to_ns(exact[i]) == log_time:
                return exact[i]
        return to_seconds(log_time)

    # -- iterating -----------------------------------------------------------------

    def __iter__(self) -> Generator[Frame]:  # a generator: callers may close() it early
        return self.frames_between(None, None)

    def frames(self) -> Generator[Frame]:
        return iter(self)

    def frames_between(self, start: float | None, end: float | None) -> Generator[Frame]:
        """Frames with ``start <= receive time < end`` (None: open), in file order."""
        self.records = self.bytes = self.truncated_bytes = 0
        if (start is None and end is None) or not self.has_index:
            yield from self._scan(start, end)
            return
        with open(self.path, "rb") as f:
            reader = SeekingReader(f, record_size_limit=MAX_RECORD_SIZE)
            reader._summary = self.summary  # read once already
            try:
                for _schema, channel, message in reader.iter_messages(
                    topics=self._topics,
                    log_time_order=False,
                    starting_at=to_ns(start) if start is not None else None,
                    ending_before=to_ns(end) if end is not None else None,
                ):
                    frame = self._frame(channel, message)
                    if (start is None or frame.time >= start) and (end is None or frame.time < end):
                        yield frame
            except (McapError, struct.error, ValueError, EOFError) as exc:
                raise RecordingError(f"{self.path}: unreadable chunk: {exc}") from None

    def _scan(self, start: float | None, end: float | None) -> Generator[Frame]:
        topics = set(self._topics)
        channels = self._channels
        with open(self.path, "rb") as f:
            records = _stream_records(f)
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except EndOfFile:  # a file not closed: cut short, or ending after a record
                    self.truncated_bytes = self.size - _records_end(self.path, self.size)
                    break
                except Exception:
                    self.truncated_bytes = max(self.size - _records_end(self.path, self.size), 1)
                    break
                if isinstance(record, Channel):
                    channels.setdefault(record.id, record)
                    if record.schema_id in (self._schema_id, 0):
                        topics.add(record.topic)
                    continue
                if not isinstance(record, Message):
                    continue
                channel = channels.get(record.channel_id)
                if channel is None or channel.topic not in topics:
                    continue
                frame = self._frame(channel, record)
                if (start is None or frame.time >= start) and (end is None or frame.time < end):
                    yield frame

    def _frame(self, channel: Channel, message: Message) -> Frame:
        seq = message.sequence if LIBRARY_WROTE in self.metadata else self.records
        time = self._time(message.log_time, seq)
        frame = frame_class(self.schema)(message.data, time, seq, self.source)
        self.records += 1
        self.bytes += len(message.data)
        return frame


LIBRARY_WROTE = META_SCHEMA  # our files carry the kind rule: their sequence numbers are ours


_RECORD_HEAD = struct.Struct("<BQ")  # opcode, length


def _records_end(path: Path, size: int) -> int:
    """Where the last whole record ends, walking the records by their lengths."""
    with open(path, "rb") as f:
        pos = len(MCAP_MAGIC)
        while pos + _RECORD_HEAD.size <= size:
            f.seek(pos)
            _, length = _RECORD_HEAD.unpack(f.read(_RECORD_HEAD.size))
            if pos + _RECORD_HEAD.size + length > size:
                break
            pos += _RECORD_HEAD.size + length
    return pos


def mcap_schema(path: str | os.PathLike[str]) -> Schema:
    """The protobuf schema of an MCAP file (see ``McapRecordingReader``)."""
    return McapRecordingReader(path).schema
