"""The workspace: one directory that holds all of vipcast's state.

`--workdir`, else `VIPCAST_HOME`, else `./.vipcast`. Inside it:
- `mlflow.db`        MLflow tracking store (unless MLFLOW_TRACKING_URI is set), `mlartifacts/` its artifacts
- `outputs.duckdb`   the outputs store (unless `outputs.store_url` is set in the config)
- `exports/`         the latest lists as CSV/Parquet, replaced atomically by each scoring run
- `runs/<run_id>/`   per-run files: reconciliation report, quarantine
- `spark_scores/<dataset>/`  scores written by Spark scoring, partitioned by as-of date (as_of=YYYY-MM-DD)
- `data/`            the cached demo data set
- `cache/`           the champion model as last loaded from a local SQLite registry (flows/tracking.py)
- `.scoring.lock`    held by a scoring run from reading the tier history to committing its outputs
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path


# Characters a workspace path cannot hold: the tracking and artifact URIs are built from it.
URL_SYNTAX = ("?", "#", "%")

#: The built-in data sources (flows.ingest reads them; flows.tracking names their datasets as given).
BUILTIN_SOURCES = ("cdnow", "cdnow-sample", "demo")
#: Characters that make a --data path a glob.
GLOB_CHARACTERS = frozenset("*?[")


def not_utf8(name: str) -> str | None:
    """`name` as it can be shown ("lat\\xe9n.parquet") when its bytes are not UTF-8 (Python holds them as
    surrogates, which DuckDB, MLflow and pyarrow fail on later, naming neither the file nor the cause);
    None for a UTF-8 name."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return None


#: Folders `Workspace.resolve` created in this process, deepest first (`discard_created_if_empty`).
CREATED_FOLDERS: list[Path] = []


def discard_created_if_empty() -> None:
    """Remove the workspace folders this process created while they are still empty: a command refused
    before it wrote anything (`vipcast score --data nope.csv --workdir typo`) left an empty folder behind."""
    while CREATED_FOLDERS:
        try:
            CREATED_FOLDERS[0].rmdir()
        except OSError:  # not empty (something was written), or gone: keep the rest
            CREATED_FOLDERS.clear()
            return
        CREATED_FOLDERS.pop(0)


#: What `not_utf8`'s callers say of such a name.
NOT_UTF8 = "not UTF-8 (a byte such as \\xe9 from a Latin-1 system)"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, workdir: str | Path | None = None, *, create: bool = True) -> "Workspace":
        """The workspace from --workdir, VIPCAST_HOME, or ./.vipcast, created if missing (unless not
        `create`: the readers, `lists` and `app`, name a mistyped folder instead of serving an empty one)."""
        chosen = workdir or os.environ.get("VIPCAST_HOME") or ".vipcast"
        root = Path(chosen).expanduser().resolve()
        if any(char in str(root) for char in URL_SYNTAX):
            raise ValueError(
                f"workspace {root}: the path holds one of {' '.join(URL_SYNTAX)}, which MLflow's sqlite and file URIs "
                "read as URL syntax (its registry and artifacts would land elsewhere); choose another --workdir or VIPCAST_HOME"
            )
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"workspace {root} is a file, not a folder: choose another --workdir or VIPCAST_HOME")
        if not create and not root.exists():
            raise FileNotFoundError(
                f"no workspace at {root}: score into it first (`vipcast score` or `vipcast demo`), or pass the "
                "--workdir (or VIPCAST_HOME) the scoring runs used"
            )
        missing = [folder for folder in (root, *root.parents) if not folder.exists()]
        root.mkdir(parents=True, exist_ok=True)
        CREATED_FOLDERS.extend(folder for folder in missing if folder not in CREATED_FOLDERS)
        return cls(root)

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str:
        return (self.root / "mlartifacts").as_uri()

    @property
    def outputs_path(self) -> Path:
        return self.root / "outputs.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def check_writable(self, *files: Path) -> None:
        """PermissionError naming the first of `files` (those that exist) and the workspace folder this
        process may not write (train named only "a read-only database", after fitting; score failed
        after scoring)."""
        for database in files:
            if database.exists():
                open(database, "r+b").close()  # opened for writing, nothing written
        _probe_writable(self.root, "cannot write into the workspace")

    def check_writable_folders(self, *folders: Path) -> None:
        """PermissionError naming the first of `folders` this process may not write into (for one that
        does not exist yet, its nearest existing parent), before any work: a read-only runs/ folder or
        --out folder failed a score after its run was stored, as "writing the outputs ... failed"."""
        for folder in folders:
            if folder.is_symlink() and not folder.exists():
                # `score --out /dev/stdout >&-`: a link to a closed descriptor read as a folder still to make, and
                # the run failed after storing ("[Errno 17] File exists").
                raise NotADirectoryError(20, "Not a directory (a link to nothing: a closed descriptor or a deleted "
                                             "target; a folder is needed here)", str(folder))
            existing = folder
            while not existing.exists() and existing.parent != existing:
                existing = existing.parent
            if existing.exists() and not existing.is_dir():
                raise NotADirectoryError(20, "Not a directory (a folder is needed here)", str(existing))
            _probe_writable(existing, "cannot write into the folder")

    @contextlib.contextmanager
    def scoring_lock(self):
        """One scoring run at a time from its tier history to its commit (another waits, and says so)."""
        with open(self.root / ".scoring.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                from flows.progress import note

                note(f"note: waiting for another scoring run of {self.root} to store its outputs")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def run_dir(self, run_id: str) -> Path:
        path = self.root / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path


def remove_orphaned_temporaries(path: Path) -> None:
    """Remove the temporary siblings of `path` left by writers that were killed (their process is gone)."""
    for orphan in path.parent.glob(f".{path.name}.tmp-*"):
        pid = orphan.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            orphan.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def opens_a_descriptor(path: Path) -> bool:
    """Whether `path` names an open file descriptor or a device (/dev/stdout, /dev/fd/N, /proc/self/fd/N,
    or a link to one; /dev/shm's files are files): `--out /dev/stdout >> log.csv` replaced log.csv,
    whose earlier lines were lost."""
    current = Path(os.path.abspath(path))
    for _ in range(40):
        if current.parts[1:2] in (("proc",), ("dev",)) and current.parts[1:3] != ("dev", "shm"):
            return True
        if not current.is_symlink():
            return False
        current = Path(os.path.abspath(current.parent / os.readlink(current)))
    return False


def write_streamed(path: Path, write) -> Path:
    """Write through a temporary file into `path` opened for appending: a FIFO, a device, or a descriptor
    the shell opened (`> x` truncated it already; `>> x` keeps what it holds). The temporary file lets
    Parquet, which seeks, reach a pipe ("lseek failed")."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vipcast-out-") as folder:
        staged = Path(folder) / path.name
        write(staged)
        with open(staged, "rb") as source, open(path, "ab") as target:
            here, there = os.fstat(source.fileno()), os.fstat(target.fileno())
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                # `--out /dev/stdout >&-`: the staged file took the closed descriptor 1, /dev/stdout reopened it,
                # and the copy appended the file to itself until the disk was full.
                raise ValueError(f"{path} names a closed descriptor (standard output closed?): there is nowhere to "
                                 "write; pass --out FILE")
            shutil.copyfileobj(source, target, 1 << 20)
    return path


def write_atomic(path: Path, write) -> Path:
    """Write a file through a temporary sibling and a rename, so readers never see half a file.

    A symbolic link is written through: the file it points to is replaced, the link stays (the rename
    replaced a "latest.csv" link with a file, and `--out /dev/stdout` replaced the device's link), with
    the permissions the replaced file had. A FIFO, device, socket or open descriptor (`--out /dev/stdout`,
    `--out >(gzip > x.gz)`) is written to by `write_streamed`: there is no sibling to rename over it.
    """
    try:
        kind = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        kind = None
    if (kind is not None and not stat.S_ISREG(kind) and not stat.S_ISDIR(kind)) or opens_a_descriptor(path):
        return write_streamed(path, write)
    given = path
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocking = next((folder for folder in [path.parent, *path.parent.parents] if folder.is_file()), None)
        if blocking is None:
            raise
        # mkdir said only "[Errno 17] File exists: 'exist.parquet'".
        raise NotADirectoryError(f"{blocking} is a file, not a folder: cannot write {path} inside it") from exc
    remove_orphaned_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            # The file replaced keeps its permissions: a list locked to 0600 came back world-readable.
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename).name == tmp.name:
            # "Read-only file system: ro/.x.parquet.tmp-22379" named a file the user never asked for.
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        if exc.filename is None and tmp.name in str(exc):
            # pyarrow's own text: "[Errno 1] Failed to open local file 'ro/.x.parquet.tmp-2340'. Detail: ...".
            errno = exc.errno or int(next(iter(re.findall(r"\[Errno (\d+)\]", str(exc))), 0)) or None
            raise OSError(errno, os.strerror(errno) if errno else "cannot write the file", str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return given


def _probe_writable(folder: Path, what: str) -> None:
    """PermissionError naming `folder` (and `what` cannot be done) when this process cannot create a file in it."""
    probe = folder / f".write-check-{os.getpid()}"
    try:
        probe.touch()
    except PermissionError as error:
        raise PermissionError(error.errno, f"Permission denied ({what})", str(folder)) from None
    probe.unlink()
