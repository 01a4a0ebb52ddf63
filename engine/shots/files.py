"""Writing a shot's file: complete under its final name, or not there at all.

A reader, or a crash, never sees half a JPEG under the final name: the data is
written to a file without that name, which gets it only once complete. Two ways:

- Never over another file (``on_exists`` ``unique`` or ``error``): on Linux an
  anonymous file (``O_TMPFILE``) is written, then linked to its name, and the
  link fails if the name exists (``FileExistsError``), so nothing is ever
  overwritten, not even a file another program made after the shot was planned.
  Four system calls (open, write, link, close), as many as a plain write would
  take, and a crash leaves nothing behind. Where the file system or ``/proc``
  does not allow it, a hidden temporary beside the final name is linked to it
  and removed; where hard links are refused too, it is renamed after a check
  that the name is still free (a window the other ways do not have).
- Over it (``replace``): the hidden temporary is renamed over the final name.

No fsync: the link or rename protects readers and a crash of the program;
surviving a power cut would cost a disk flush (milliseconds) per shot. Plain
strings, not pathlib: its parsing costs more than the system calls. The
caller picks the thread and calls one method at a time.
"""

from __future__ import annotations

import contextlib
import errno
import os

from engine.shots.paths import temp_name

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0) | os.O_CLOEXEC
_TMPFILE = getattr(os, "O_TMPFILE", 0)
# Errors that say "this way of linking is not available here", not "this file failed".
_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EISDIR, errno.EXDEV, errno.EPERM}
)
_proc_fd: int | None = None  # /proc/self/fd, to link an anonymous file by its descriptor
_anonymous = bool(_TMPFILE)  # cleared for good when the system refuses it


def _forget_proc() -> None:
    global _proc_fd
    _proc_fd = None  # the child's /proc/self is another process: open it again


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_proc)


def _proc() -> int:
    global _proc_fd
    fd = _proc_fd
    if fd is None:
        fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if _proc_fd is None:
            _proc_fd = fd
        else:  # another thread opened it meanwhile
            os.close(fd)
            fd = _proc_fd
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ShotFile:
    """One shot's file while it is made: ``create`` (may come early), ``commit``, ``discard``.

    ``create`` may run while the camera works, so the file system's costliest
    call is off the path from the camera's answer to ``success``; ``commit``
    writes, then gives the file its name, creating first if needed (and the
    folder, only when creating says it is missing: no stat or mkdir per shot).
    ``discard`` removes what an unfinished shot left. ``commit`` raises
    ``FileExistsError`` when the name is taken and ``replace`` is false.
    """

    __slots__ = ("anonymous", "done", "fd", "final", "folder", "replace", "tmp")

    def __init__(self, final: str | os.PathLike[str], task: str, *, replace: bool) -> None:
        self.final = os.fspath(final)
        cut = max(self.final.rfind("/"), self.final.rfind(os.sep)) + 1
        self.folder = self.final[: cut - 1] if cut > 1 else (self.final[:cut] or ".")
        self.tmp = self.final[:cut] + temp_name(self.final[cut:], task)
        self.replace = replace
        self.fd: int | None = None
        self.anonymous = False
        self.done = False  # committed or discarded

    def create(self) -> None:
        """Open the file the data goes to (and make its folder when missing)."""
        try:
            self._open()
        except FileNotFoundError:
            os.makedirs(self.folder, exist_ok=True)
            self._open()

    def _open(self) -> None:
        global _anonymous
        if not self.replace and _anonymous:
            try:
                self.fd = os.open(self.folder, os.O_WRONLY | _TMPFILE | os.O_CLOEXEC, 0o666)
                self.anonymous = True
                return
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                _anonymous = False
        self.fd = os.open(self.tmp, _CREATE, 0o666)

    def commit(self, data: bytes) -> None:
        """``data`` under the final name, complete; on failure nothing is left."""
        if self.fd is None:
            self.create()
        try:
            if self.anonymous:
                if self._link_anonymous(data):
                    self.done = True
                    return
                self.create()  # anonymous linking is refused here: the named way
            fd, self.fd = self.fd, None
            assert fd is not None
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            if self.replace:
                os.replace(self.tmp, self.final)
            else:
                self._link_named()
        except BaseException:
            self.discard()
            raise
        self.done = True

    def _link_anonymous(self, data: bytes) -> bool:
        """Write and link the anonymous file; False when this system refuses the link."""
        global _anonymous
        fd = self.fd
        assert fd is not None
        _write_all(fd, data)
        try:
            os.link(str(fd), self.final, src_dir_fd=_proc(), follow_symlinks=True)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED and exc.errno != errno.ENOENT:
                raise
            _anonymous = False
            self.fd, self.anonymous = None, False
            os.close(fd)
            return False
        self.fd = None
        os.close(fd)
        return True

    def _link_named(self) -> None:
        try:
            os.link(self.tmp, self.final)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED and exc.errno != errno.EMLINK:
                raise
            # No hard links here (FAT, some network shares): check, then rename.
            if os.path.lexists(self.final):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), self.final) from None
            os.replace(self.tmp, self.final)
            return
        os.unlink(self.tmp)

    def discard(self) -> None:
        """Close and remove what was made; nothing once committed."""
        if self.done:
            return
        self.done = True
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        if not self.anonymous:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


def write_atomic(
    final: str | os.PathLike[str], data: bytes, task: str, *, replace: bool = True
) -> None:
    """Write ``data`` to ``final`` complete or not at all (``FileExistsError`` if not ``replace``)."""
    ShotFile(final, task, replace=replace).commit(data)
