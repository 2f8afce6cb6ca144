"""Which files in a collection's folders get indexed, and which are skipped and why.

``discover`` walks the roots a person dropped on the window (folders and single
files) and yields every file to index (``FoundFile``) and every path it skipped
(``SkippedFile`` with a state and a reason the Documents page can show).
Exclude patterns follow ``.gitignore`` semantics through ``pathspec``, matched
against the path relative to its root, so ``build/`` means any folder named
build and ``/build/`` only the one at the top.

The walk never follows a symlink into a folder it has already entered (that is
how loops end), reaches each real file once even through several links, skips
unreadable folders with a reason instead of failing, and keeps file names that
are not valid UTF-8 (Python's surrogateescape) so they can be opened later.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pathspec

from retrieval.errors import BadExcludePattern

# Hidden files and folders (".*") already cover .git/, .venv/, .cache/ and the
# like; they are listed too so the defaults read as what they mean.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".*",  # hidden files and folders
    ".git/",
    ".hg/",
    ".svn/",
    ".venv/",
    "venv/",
    "node_modules/",
    "__pycache__/",
    "*.pyc",
    "*.egg-info/",
    "build/",
    "dist/",
    "target/",
    "~$*",  # Office lock files of a document being edited
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.swo",
    "*~",  # editor backups
    "#*#",  # Emacs autosave
    "*.part",  # unfinished downloads
    "*.crdownload",
    "Thumbs.db",
    "desktop.ini",
)

SkippedState = Literal["excluded", "unreadable", "duplicate"]


@dataclass(frozen=True)
class FoundFile:
    path: Path  # as reached under its root (a symlink keeps its own name)
    size: int  # bytes, of the file a symlink points to
    mtime_ns: int


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    state: SkippedState
    reason: str  # one line for a person: why this path is not indexed
    is_dir: bool = False  # an excluded folder is reported once, not file by file


def display_path(path: os.PathLike[str] | str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 show as U+FFFD
    instead of raising when the name is printed or shown in a label."""
    return os.fsencode(path).decode("utf-8", errors="replace")


class ExcludeRules:
    """``.gitignore``-style patterns (later patterns win; ``!pattern`` re-includes)."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_EXCLUDES) -> None:
        self.patterns: tuple[str, ...] = tuple(p for p in patterns if p.strip())
        # One compiled pattern per line, to name the one that matched in a
        # reason, and to say which line is wrong.
        self._each = [(p, _compile(p)) for p in self.patterns]
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)

    @classmethod
    def with_defaults(cls, extra: Iterable[str] = ()) -> ExcludeRules:
        return cls((*DEFAULT_EXCLUDES, *extra))

    def matches(self, rel_path: str | os.PathLike[str], is_dir: bool) -> bool:
        """True when ``rel_path`` (relative to its root, ``/``-separated) is excluded."""
        return self._spec.match_file(self._key(rel_path, is_dir))

    def matching_pattern(self, rel_path: str | os.PathLike[str], is_dir: bool) -> str | None:
        """The last pattern that excludes ``rel_path``, or None if it is included."""
        key = self._key(rel_path, is_dir)
        if not self._spec.match_file(key):
            return None
        for pattern, spec in reversed(self._each):
            if not pattern.startswith("!") and spec.match_file(key):
                return pattern
        return self.patterns[-1] if self.patterns else None

    @staticmethod
    def _key(rel_path: str | os.PathLike[str], is_dir: bool) -> str:
        key = os.fspath(rel_path).replace(os.sep, "/").strip("/")
        # gitignore's "build/" matches only folders; pathspec knows a folder by
        # its trailing slash.
        return key + "/" if is_dir else key


def _compile(pattern: str) -> pathspec.GitIgnoreSpec:
    try:
        return pathspec.GitIgnoreSpec.from_lines([pattern])
    except ValueError as exc:
        raise BadExcludePattern(
            f"the exclude pattern {pattern!r} is not valid .gitignore syntax "
            '(a lone "!" or a trailing backslash, for example); fix or remove it',
            detail=str(exc),
        ) from exc


def discover(
    roots: Sequence[Path], excludes: ExcludeRules | None = None
) -> Iterator[FoundFile | SkippedFile]:
    """Every file under ``roots`` to index, and every path skipped with its reason.

    A root that is a file is taken as chosen on purpose: exclude patterns apply
    only below folder roots. Entries come in sorted order, so two walks of an
    unchanged tree yield the same sequence.
    """
    rules = excludes if excludes is not None else ExcludeRules()
    walk = _Walk(rules)
    for root in roots:
        yield from walk.root(Path(root))


class _Walk:
    def __init__(self, rules: ExcludeRules) -> None:
        self.rules = rules
        self.seen_dirs: set[tuple[int, int]] = set()  # (st_dev, st_ino) of folders entered
        self.seen_files: dict[tuple[int, int], Path] = {}  # -> the name it was found under

    def root(self, root: Path) -> Iterator[FoundFile | SkippedFile]:
        try:
            st = root.stat()
        except FileNotFoundError:
            kind = "a broken symbolic link" if root.is_symlink() else "not found"
            yield SkippedFile(root, "unreadable", f"{kind}: {display_path(root)}")
            return
        except OSError as exc:
            yield SkippedFile(root, "unreadable", _os_reason(exc))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self._folder(root, root, st)
        else:
            yield from self._file(root, st)

    def _folder(
        self, root: Path, folder: Path, st: os.stat_result
    ) -> Iterator[FoundFile | SkippedFile]:
        # Iterative depth-first walk (deep trees cannot hit the recursion
        # limit), in name order at every level, like a sorted listing.
        stack: list[Iterator[os.DirEntry[str]]] = []
        yield from self._enter(folder, st, stack)
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            path = Path(entry.path)
            try:
                entry_st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                if entry.is_symlink():
                    reason = "a broken symbolic link (its target does not exist)"
                else:
                    reason = "removed while the folder was being scanned"
                yield SkippedFile(path, "unreadable", reason)
                continue
            except OSError as exc:
                yield SkippedFile(path, "unreadable", _os_reason(exc))
                continue
            is_dir = stat.S_ISDIR(entry_st.st_mode)
            pattern = self.rules.matching_pattern(path.relative_to(root).as_posix(), is_dir)
            if pattern is not None:
                reason = f"matches the exclude pattern {pattern!r}"
                yield SkippedFile(path, "excluded", reason, is_dir=is_dir)
            elif is_dir:
                yield from self._enter(path, entry_st, stack)
            else:
                yield from self._file(path, entry_st)

    def _enter(
        self, folder: Path, st: os.stat_result, stack: list[Iterator[os.DirEntry[str]]]
    ) -> Iterator[SkippedFile]:
        """Push ``folder``'s sorted entries, unless it was entered before."""
        ident = (st.st_dev, st.st_ino)
        if ident in self.seen_dirs:
            yield SkippedFile(
                folder,
                "duplicate",
                "a link to a folder already scanned; skipped so the scan cannot loop",
                is_dir=True,
            )
            return
        self.seen_dirs.add(ident)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield SkippedFile(folder, "unreadable", _os_reason(exc), is_dir=True)
            return
        stack.append(iter(entries))

    def _file(self, path: Path, st: os.stat_result) -> Iterator[FoundFile | SkippedFile]:
        if not stat.S_ISREG(st.st_mode):
            yield SkippedFile(path, "unreadable", f"not a regular file ({_file_type(st.st_mode)})")
            return
        ident = (st.st_dev, st.st_ino)
        first = self.seen_files.get(ident)
        if first is not None:
            reason = f"the same file as {display_path(first)}, indexed under that name"
            yield SkippedFile(path, "duplicate", reason)
            return
        self.seen_files[ident] = path
        yield FoundFile(path, st.st_size, st.st_mtime_ns)


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied: Footnote may not read it"
    if exc.errno == errno.ELOOP:
        return "a symbolic link that points to itself (a loop)"
    return f"cannot be read ({exc.strerror or exc.__class__.__name__})"
