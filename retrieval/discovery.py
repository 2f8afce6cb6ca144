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

Links stay inside the collection. A symbolic link (to a file or a folder) is
followed only when its target lies inside one of the collection's own folders
(or is one of its chosen files): a link to ``/etc/passwd`` or to a folder
elsewhere is skipped and listed with its target (state ``link_outside``),
unless the user allowed links out for that collection. "Inside" compares
device and inode of the target's folders with the roots', not spellings, so
case-insensitive disks and bind mounts cannot fool it either way. Every file
found carries the device and inode the scan saw: the reader refuses a file
swapped for another one (or for a pipe or a device) after the scan.
"""

from __future__ import annotations

import contextlib
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

SkippedState = Literal["excluded", "unreadable", "duplicate", "link_outside"]
LINK_OUTSIDE_STATE: SkippedState = "link_outside"


@dataclass(frozen=True)
class FoundFile:
    path: Path  # as reached under its root (a symlink keeps its own name)
    size: int  # bytes, of the file a symlink points to
    mtime_ns: int
    # What the scan found at ``path`` (0, 0: not recorded): the reader checks
    # that the file it opens is still this one.
    device: int = 0
    inode: int = 0
    via_link: bool = False  # ``path`` itself is a symbolic link (allowed, see the module doc)


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
    roots: Sequence[Path],
    excludes: ExcludeRules | None = None,
    *,
    follow_links_outside: bool = False,
) -> Iterator[FoundFile | SkippedFile]:
    """Every file under ``roots`` to index, and every path skipped with its reason.

    A root that is a file is taken as chosen on purpose: exclude patterns apply
    only below folder roots. A root that is itself a link is followed (the
    user chose it); links below the roots are followed only to targets inside
    the roots, unless ``follow_links_outside``. Entries come in sorted order,
    so two walks of an unchanged tree yield the same sequence.
    """
    rules = excludes if excludes is not None else ExcludeRules()
    walk = _Walk(rules, [Path(r) for r in roots], follow_links_outside)
    for root in roots:
        yield from walk.root(Path(root))


class _Walk:
    def __init__(self, rules: ExcludeRules, roots: Sequence[Path], follow_outside: bool) -> None:
        self.rules = rules
        self.seen_dirs: set[tuple[int, int]] = set()  # (st_dev, st_ino) of folders entered
        self.seen_files: dict[tuple[int, int], Path] = {}  # -> the name it was found under
        self.follow_outside = follow_outside
        # (st_dev, st_ino) of the folder roots and of the file roots: what
        # "inside this collection" means for a link's target.
        self.root_dirs: set[tuple[int, int]] = set()
        self.root_files: set[tuple[int, int]] = set()
        for root in roots:
            with contextlib.suppress(OSError):
                st = root.stat()
                (self.root_dirs if stat.S_ISDIR(st.st_mode) else self.root_files).add(_ident(st))

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
            yield from self._file(root, st, via_link=root.is_symlink())

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
            via_link = entry.is_symlink()
            if pattern is not None:
                reason = f"matches the exclude pattern {pattern!r}"
                yield SkippedFile(path, "excluded", reason, is_dir=is_dir)
            elif via_link and not self.follow_outside and (outside := self._outside(path)):
                yield SkippedFile(path, LINK_OUTSIDE_STATE, outside, is_dir=is_dir)
            elif is_dir:
                yield from self._enter(path, entry_st, stack)
            else:
                yield from self._file(path, entry_st, via_link=via_link)

    def _outside(self, link: Path) -> str | None:
        """Why the link ``link`` is not followed (its target is outside the
        collection's folders), or None when its target is inside."""
        target = Path(os.path.realpath(link))
        for folder in (target, *target.parents):
            try:
                ident = _ident(folder.stat())
            except OSError:
                continue
            if ident in self.root_dirs or (folder == target and ident in self.root_files):
                return None
        return f"link to {display_path(target)}, outside this collection's folders"

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

    def _file(
        self, path: Path, st: os.stat_result, *, via_link: bool
    ) -> Iterator[FoundFile | SkippedFile]:
        if not stat.S_ISREG(st.st_mode):
            yield SkippedFile(path, "unreadable", f"not a regular file ({file_type(st.st_mode)})")
            return
        ident = _ident(st)
        first = self.seen_files.get(ident)
        if first is not None:
            reason = f"the same file as {display_path(first)}, indexed under that name"
            yield SkippedFile(path, "duplicate", reason)
            return
        self.seen_files[ident] = path
        yield FoundFile(path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, via_link)


def _ident(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def file_type(mode: int) -> str:
    """What a non-regular file is, in words ("a named pipe", "a device"…)."""
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
