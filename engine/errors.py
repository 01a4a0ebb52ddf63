"""The exceptions cuecap raises on purpose, under one root.

Catch ``CuecapError`` to catch every one of them. Each also derives from the
built-in exception callers already expect of its kind (``ValueError`` for bad
input, ``OSError`` for files, ``KeyError`` for unknown names...), so code
written before the root existed keeps working. Errors of the libraries
underneath (websockets, httpx, PyYAML, pydantic, CEL, PyAV...) are translated
into these where they cross into cuecap: no caller needs to import a library
to handle a cuecap failure.

The tree (module of each class in brackets)::

    CuecapError
     ├── InvalidArgument(ValueError)        a value a cuecap function or class was given
     │    │                                 that it cannot use (the message says which)
     │    └── InvalidSettings               settings from Python that their model refuses,
     │                                      each field named [core.validation]
     ├── UnsupportedType(TypeError)         an object of a type the call does not take
     ├── InvalidState(RuntimeError)         asked of an object what its state does not
     │                                      allow now (a stopped recorder thread...)
     ├── UnknownName(KeyError)              a name nothing is configured under
     ├── ListenError(OSError)               a server that cannot listen on its address
     ├── NoSuchFile(FileNotFoundError)      a file asked for by name that is not there
     ├── RuleFileError(ValueError)          rule files that cannot be used, each
     │                                      problem at file:line:column [rules.errors]
     ├── ScheduleError(ValueError)          a schedule that cannot fire [rules.schedule]
     ├── TemplateError(ValueError)          a bad name template [core.templates]
     ├── PathEscapeError(ValueError)        a rendered path that leaves its folder [core.templates]
     ├── ConditionError(ValueError)         a CEL condition that does not compile [core.condition]
     ├── CelError(ValueError)               a compiled CEL expression failed to evaluate [core.celfast]
     ├── Deferred                           an evaluation the compiled CEL subset leaves to
     │                                      the CEL extension (never escapes) [core.celfast]
     ├── FieldPathError(ValueError)         a field path the schema does not have [core.fieldpath]
     ├── FrameDecodeError(ValueError)       bytes that are not a message [core.frame]
     ├── SchemaError(ValueError)            a protobuf schema that cannot be used [core.schema]
     ├── EventFormatError(ValueError)       JSON that is not an event [events]
     ├── TimeSpecError(ValueError)          a --from/--to that is no time [logtools.timerange]
     ├── ReplayError(ValueError)            a replay that cannot run [runtime.replay]
     ├── SimConfigError(ValueError)         a bad simulator setting [sim.world]
     ├── RenderError(ValueError)            a frame the simulator cannot draw [sim.render]
     ├── RecordingError(OSError)            a recording that cannot be read or written
     │                                      [recording.format]
     ├── NotShipped(FileNotFoundError)      an install without its shipped rules or
     │                                      examples [shipped]
     ├── SourceUnavailable(ConnectionError) a source that cannot be reached [sources.websocket]
     ├── MqttUnavailable(ConnectionError)   an MQTT broker that cannot be reached or refused
     │                                      us (the client retries) [mqtt.client]
     ├── SecretMissing(KeyError)            an environment variable named for a secret is
     │                                      not set [core.secrets]
     ├── SendFailed                         a try to deliver a message failed (``retryable``
     │                                      says if another may help) [notify.targets]
     ├── ClusterError(ConnectionError)      a NATS server that cannot be reached or refuses
     │                                      what the cluster needs [cluster.errors]
     ├── FeedError(ValueError)              a message in a source's stream not published by
     │                                      cuecap [cluster.feedcore]
     ├── PayloadError(ValueError)           JSON from the NATS server too big, too deep or
     │                                      not JSON [cluster.payload]
     ├── RecorderStateError(RuntimeError)   a recorder asked what its state forbids
     │                                      [recorder.decisions]
     ├── GraphError(RuntimeError)           a state graph that cannot be drawn [recorder.graph]
     ├── LogToolError                       a log tool that cannot do what was asked
     │    └── MissingDependency              ... because an optional package is missing
     │                                      [logtools.errors]
     ├── AddressError(ValueError)           text that is not HOST:PORT [core.address]
     ├── HttpConfigError(ValueError)        an address or token the HTTP server cannot
     │                                      use; nothing started [http.config]
     ├── ControlError                       a control action not carried out [runtime.control]
     │    ├── UnknownTarget(KeyError)       ... because nothing has that name
     │    └── ControlRefused(RuntimeError)  ... because the target's state forbids it
     ├── CaptureError                       a camera that gave no image (``retryable``
     │                                      says if another try may help) [shots.backends.base]
     ├── ShotFailed                         a shot that ended in error, delivered to
     │                                      ``get()`` callbacks [shots.status]
     └── ShotRejected                       a shot refused before it was queued [shots.status]
          ├── QueueFull                     ... because the queue is at its bound
          ├── Throttled                     ... because of a camera's minimum interval
          ├── SaverClosed                   ... because the saver is closed
          ├── UnknownCamera(KeyError)       ... because no camera has that name
          └── NoCallback(OSError)           ... because get() has nowhere to deliver

A test walks the package and checks that every exception class it defines is
in this tree.
"""

from __future__ import annotations


class CuecapError(Exception):
    """The root of every exception cuecap raises on purpose."""


class InvalidArgument(CuecapError, ValueError):
    """A value a cuecap function or class was given that it cannot use."""


class UnsupportedType(CuecapError, TypeError):
    """An object of a type the call does not take."""


class InvalidState(CuecapError, RuntimeError):
    """Asked of an object what its state does not allow now."""


class UnknownName(CuecapError, KeyError):
    """A name nothing is configured under (the message says which names there are)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown name"


class ListenError(CuecapError, OSError):
    """A server that cannot listen on its address (``errno`` says why)."""


class NoSuchFile(CuecapError, FileNotFoundError):
    """A file asked for by name that is not there."""
