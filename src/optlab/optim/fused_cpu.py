"""optlab's fused CPU kernels: a whole parameter group updated in one pass over memory.

torch fuses its own CPU Adam (``fused=True``); optlab's rules with more state (IMO, MAMGD)
get the same treatment here. ``fused_cpu.cpp`` (beside this file) holds one C++ kernel per
rule, written operation for operation like the rule's ``_single_tensor_rule`` (the spec).
Each kernel updates every tensor of a group in one OpenMP parallel region: the group's
elements are split into one contiguous range per thread, and every element of the
parameter, gradient and state is read once and written once, the minimum traffic.

Why a kernel of its own: on CPU a step is memory-bound, and ``torch.compile`` per tensor
pays about 30-40 us of Python dispatch per tensor (4 ms a step on a model of 100 tensors,
as much as the arithmetic); compiled over the whole tensor list it takes over a minute to
build. ``benchmarks/step_cost.py`` measures every path against torch's fused Adam.

Threads: ``torch.get_num_threads()``, through the OpenMP runtime torch itself loaded. A
population's per-member learning rates (a 1-D ``lr``, parameters stacked along a leading
axis) are taken as one learning rate per row of that axis.

Build: the first use on a machine compiles the source with the system C++ compiler
(``$CXX``, else ``c++``/``g++``/``clang++``; ``-O3 -march=native -fopenmp``, about 1-2 s;
later processes load the cached library)
into a cache folder (``$OPTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/optlab`` or
``~/.cache/optlab``; where that cannot be written, ``optlab-<uid>`` in the temporary
directory), under a name that hashes the source, the compiler, its flags and
this CPU's features, so a cache shared between machines never loads code built for
another CPU. Code is loaded only from this user's private folder: the ``kernels`` folder
must be a real folder (no symbolic link) owned by this user that no group or other user
may write to (else the temporary directory's ``optlab-<uid>/kernels``, under the same rule),
and a cached library must be a regular file owned by this user, not group/other
writable, or it is rebuilt, before anything is loaded (a library's constructors run as it
loads, before any check of its contents). A cached library that does not load, lacks a
kernel or has another ABI is rebuilt once. The library is written to a temporary file
and renamed into place, so concurrent first uses never load a half-written file. Where no
compiler works, the kernels are unavailable (:func:`unavailable_reason` says why) and the
optimizers take their next path (``torch.compile``, then the eager loop).

Numbers: the kernels are built with ``-ffp-contract=off`` and no fast-math, so each
operation rounds as torch's does; torch's own CPU kernels fuse some multiply-adds (e.g.
``add_(x, alpha=a)``), so agreement with the eager loop is to float rounding (tested:
float64, 1e-12 relative over the contract kit's runs), not always bit for bit.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch

logger = logging.getLogger("optlab.optim")

SOURCE_NAME = "fused_cpu.cpp"
FLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp",
    "-fno-math-errno",
    "-ffp-contract=off",
    "-std=c++17",
    "-shared",
    "-fPIC",
)
#: The flags of a second try where the compiler has no OpenMP (Apple's clang): the kernels
#: then run on one thread, still in one pass over memory.
SERIAL_FLAGS = tuple(flag for flag in FLAGS if flag != "-fopenmp")
#: The ABI version ``optlab_fused_cpu_abi()`` must return.
ABI = 3
#: The rules with a kernel (``optlab_<rule>_<dtype>`` for each dtype).
RULES = ("imo", "mamgd")
#: The dtypes with a kernel.
DTYPES = {torch.float32: "float32", torch.float64: "float64"}

_Kernel = ctypes.CFUNCTYPE(
    None,
    ctypes.c_int64,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.c_int64,
    ctypes.POINTER(ctypes.c_int64),
    ctypes.POINTER(ctypes.c_double),
    ctypes.POINTER(ctypes.c_double),
    ctypes.c_int64,
    ctypes.c_int,
)

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failure: str | None = None
_build_seconds: float | None = None
_kernels: dict[str, ctypes._CFuncPtr] = {}


class FusedKernelError(RuntimeError):
    """The tensors handed to a fused kernel do not fit it (a bug in the caller)."""


def cache_dir() -> Path:
    """Where built kernels are kept (see the module docstring)."""
    explicit = os.environ.get("OPTLAB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "optlab"


def _compiler() -> list[str] | None:
    """The compiler command: ``$CXX`` (split as a shell would: ``ccache g++`` works), else
    the first of ``c++``, ``g++``, ``clang++`` on the PATH."""
    explicit = shlex.split(os.environ.get("CXX", ""))
    if explicit and shutil.which(explicit[0]):
        return [shutil.which(explicit[0]) or explicit[0], *explicit[1:]]
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _cpu_features() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            lines = [
                line.strip()
                for line in info
                if line.startswith(("flags", "model name", "Features", "CPU part"))
            ]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


class UntrustedCacheError(RuntimeError):
    """A cache location is not this user's private folder or file: no code is loaded from
    it."""


def _private_folder(folder: Path) -> Path:
    """``folder`` created for this user alone (0700), or refused if it exists and someone
    else owns it or may write to it: code is loaded from there, and a shared temporary
    directory lets anyone create a folder of that name first."""
    folder.mkdir(mode=0o700, exist_ok=True)
    _check_private(folder)
    return folder


def _owner() -> int | None:
    """This process's user id (None where the platform has no POSIX owners)."""
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def _untrusted(info: os.stat_result, owner: int | None) -> bool:
    """Whether an entry with ``info`` (from ``lstat``) may have been written by someone
    else: a symbolic link, another owner, or group/other write permission."""
    import stat

    if stat.S_ISLNK(info.st_mode) or info.st_mode & 0o022:
        return True
    return owner is not None and info.st_uid != owner


def _check_private(folder: Path) -> None:
    """Refuse ``folder`` (:class:`UntrustedCacheError`) unless it is a real folder (not a
    symbolic link) owned by this user that no group or other user may write to."""
    import stat

    info = folder.lstat()
    if _untrusted(info, _owner()) or not stat.S_ISDIR(info.st_mode):
        raise UntrustedCacheError(
            f"{folder} is not this user's private folder (owner {info.st_uid}, mode "
            f"{oct(info.st_mode & 0o777)}{', a symbolic link' if folder.is_symlink() else ''}"
            "): not loading kernels from it; set OPTLAB_CACHE_DIR"
        )


def trusted_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a symbolic link) owned by this user that no
    group or other user may write to: the rule every cached library passes before it is
    loaded (its folder passes :func:`_check_private`)."""
    import stat

    try:
        info = path.lstat()
    except OSError:
        return False
    if _untrusted(info, _owner()) or not stat.S_ISREG(info.st_mode):
        logger.warning(
            "optlab: ignoring cached kernel library %s (owner %s, mode %s, %s): rebuilding it",
            path,
            info.st_uid,
            oct(info.st_mode & 0o777),
            "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not this user's private file",
        )
        return False
    return True


def kernel_folder() -> Path:
    """The folder built kernels go to and are loaded from: ``cache_dir()/kernels`` when it
    is (or can be made) this user's private, writable folder; else ``optlab-<uid>/kernels``
    in the temporary directory, which must be private too (:class:`UntrustedCacheError`)."""
    folder = cache_dir() / "kernels"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        _check_private(folder)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-")  # noqa: SIM115
        probe.close()
        return folder
    except UntrustedCacheError as error:  # a shared or planted folder: never load from it
        logger.warning("optlab: %s; using the temporary directory instead", error)
    except OSError:  # a read-only home: this user's folder in the temporary directory
        pass
    folder = _private_folder(Path(tempfile.gettempdir()) / f"optlab-{_user()}") / "kernels"
    folder.mkdir(mode=0o700, exist_ok=True)
    _check_private(folder)
    return folder


def _user() -> str:
    try:
        return str(os.getuid())
    except AttributeError:  # Windows
        return os.environ.get("USERNAME", "user")


def _compiler_version(compiler: list[str]) -> str:
    try:
        done = subprocess.run(
            [*compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    return done.stdout.strip()


def library_name(source: bytes, compiler: list[str], flags: Sequence[str] = FLAGS) -> str:
    """The cached library's file name: a hash of the source, the compiler (and its
    version), the flags and this CPU's features."""
    key = hashlib.sha256()
    for part in (source, " ".join(compiler), _compiler_version(compiler), " ".join(flags)):
        key.update(part if isinstance(part, bytes) else part.encode())
        key.update(b"\0")
    key.update(_cpu_features().encode())
    key.update(f"{sys.platform} {platform.machine()}".encode())
    return f"fused_cpu-{key.hexdigest()[:20]}.so"


def _build(
    source: bytes,
    compiler: list[str],
    *,
    flags: Sequence[str] = FLAGS,
    rebuild: bool = False,
) -> Path:
    """Compile ``source`` with ``flags`` into the cache (or find it there, unless
    ``rebuild``) and return the library path."""
    name = library_name(source, compiler, flags)
    folder = kernel_folder()
    if not rebuild and trusted_file(folder / name):
        return folder / name
    target = folder / name
    with tempfile.TemporaryDirectory(prefix="optlab-build-") as scratch:
        source_path = Path(scratch) / SOURCE_NAME
        source_path.write_bytes(source)
        built = Path(scratch) / "fused_cpu.so"
        done = subprocess.run(
            [*compiler, *flags, str(source_path), "-o", str(built)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            first = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(
                f"{Path(compiler[0]).name} failed (exit {done.returncode}): "
                f"{first[0] if first else 'no output'}"
            )
        # same folder as the target, then an atomic rename: readers see all or nothing
        fd, partial = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(built.read_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.chmod(partial, 0o755)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return target


def _load() -> ctypes.CDLL | None:
    global _library, _failure, _build_seconds
    if _library is not None or _failure is not None:
        return _library
    with _lock:
        if _library is not None or _failure is not None:
            return _library
        started = time.perf_counter()
        compiler = _compiler()
        if compiler is None:
            _failure = "no C++ compiler found ($CXX, c++, g++ or clang++)"
            logger.info("optlab fused CPU kernels unavailable (%s)", _failure)
            return None
        source = resources.files("optlab.optim").joinpath(SOURCE_NAME).read_bytes()
        errors: list[str] = []
        library = None
        # OpenMP first; where it does not build or load (Apple's clang, no libomp at run
        # time), the same kernels on one thread
        for flags in (FLAGS, SERIAL_FLAGS):
            try:
                library = _build_and_open(source, compiler, flags)
                break
            except Exception as error:  # a failed build, an unloadable library
                errors.append(f"{type(error).__name__}: {error}")
        if library is None:
            _failure = errors[0]
            # a compiler that is there but fails is unexpected: say so where it is seen
            logger.warning("optlab fused CPU kernels unavailable (%s)", _failure)
            return None
        if errors:
            logger.warning(
                "optlab fused CPU kernels run on one thread: the OpenMP build failed (%s)",
                errors[0],
            )
        _build_seconds = time.perf_counter() - started
        logger.info("optlab fused CPU kernels ready in %.2f s (built or cached)", _build_seconds)
        _library = library
        return library


def _build_and_open(source: bytes, compiler: list[str], flags: Sequence[str]) -> ctypes.CDLL:
    try:
        return _open(_build(source, compiler, flags=flags))
    except OSError:  # a cached library that does not load: build it again, once
        return _open(_build(source, compiler, flags=flags, rebuild=True))


def _open(path: Path) -> ctypes.CDLL:
    """Load the library at ``path`` (checked again: this user's private file) and check
    its ABI and that it exports every kernel; OSError (so the caller rebuilds) if not."""
    if not trusted_file(path):
        raise OSError(f"{path}: not this user's private file")
    library = ctypes.CDLL(str(path))
    names = ["optlab_fused_cpu_abi", *(f"optlab_{r}_{d}" for r in RULES for d in DTYPES.values())]
    missing = [name for name in names if not hasattr(library, name)]
    abi = None if missing else library.optlab_fused_cpu_abi()
    if missing or abi != ABI:
        _close(library)  # so that a rebuilt file at the same path is loaded afresh
        reason = f"missing symbol {missing[0]}" if missing else f"kernel ABI {abi}, expected {ABI}"
        raise OSError(f"{path.name}: {reason}")
    return library


def _close(library: ctypes.CDLL) -> None:
    """Unload ``library`` (POSIX ``dlclose``): the dynamic loader would otherwise hand back
    this handle for the same path, even after the file there was replaced."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(library._handle)


def available() -> bool:
    """Whether the fused CPU kernels can run in this process (builds them on first call)."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the kernels cannot run (``None`` if they can, or were not tried yet)."""
    return _failure


def build_seconds() -> float | None:
    """Seconds the first load took in this process (the build, when not cached)."""
    return _build_seconds


def kernel(rule: str, dtype: torch.dtype) -> ctypes._CFuncPtr | None:
    """The kernel of ``rule`` (``"imo"``, ``"mamgd"``) for ``dtype``, or ``None``."""
    name = DTYPES.get(dtype)
    if name is None:
        return None
    key = f"optlab_{rule}_{name}"
    found = _kernels.get(key)
    if found is None:
        library = _load()
        if library is None:
            return None
        found = _kernels[key] = _Kernel((key, library))
    return found


def fits(tensor: torch.Tensor | None, param: torch.Tensor) -> bool:
    """Whether ``tensor`` can be handed to a kernel beside ``param``: a dense, contiguous
    CPU tensor of the same dtype and number of elements (``None`` fits: an absent kind)."""
    return tensor is None or (
        tensor.device.type == "cpu"
        and tensor.layout == torch.strided
        and tensor.dtype == param.dtype
        and tensor.numel() == param.numel()
        and tensor.is_contiguous()
    )


def fits_members(param: torch.Tensor, members: int) -> bool:
    """Whether ``param`` is ``members`` rows along its leading axis (a population's
    stacked parameter), as a per-member learning rate needs."""
    return members == 1 or (param.dim() >= 1 and param.shape[0] == members)


def overlapping(tensors: Sequence[torch.Tensor | None]) -> set[int]:
    """Positions of the tensors whose memory overlaps another's in the list (a kernel
    updates different tensors concurrently: shared storage would race)."""
    spans = sorted(
        (tensor.data_ptr(), tensor.data_ptr() + tensor.numel() * tensor.element_size(), i)
        for i, tensor in enumerate(tensors)
        if tensor is not None and tensor.numel() > 0
    )
    found: set[int] = set()
    reach, owner = -1, -1
    for start, stop, i in spans:
        if start < reach:
            found.update((i, owner))
        if stop > reach:
            reach, owner = stop, i
    return found


class Launch:
    """One kernel call prepared over fixed tensor lists: the pointer and offset arrays are
    built once, and a step only re-points the kinds that change (the gradients).

    ``kinds``: lists of equal length, the parameters (kind 0), their gradients (kind 1, the
    one kind a kernel only reads), then each state; ``None`` for an absent kind. Every
    tensor must pass :func:`fits` against its parameter (the caller checks: a kernel writes
    raw memory).

    ``members > 1``: the parameters are a population's, stacked along a leading axis of
    that size, and the first scalar of :meth:`run` may be one value per member (a 1-D
    tensor: per-member learning rates).
    """

    def __init__(
        self,
        rule: str,
        kinds: Sequence[Sequence[torch.Tensor] | None],
        *,
        members: int = 1,
    ) -> None:
        params = kinds[0]
        if not params:
            raise FusedKernelError(f"{rule}: no parameters to launch over")
        function = kernel(rule, params[0].dtype)
        if function is None:
            raise FusedKernelError(f"no fused CPU kernel for {rule} in {params[0].dtype}")
        if not all(fits_members(param, members) for param in params):
            raise FusedKernelError(f"{rule}: parameters are not {members} stacked members")
        self.rule = rule
        self.members = members
        self.function = function
        self.count = count = len(params)
        self.pointers = (ctypes.c_void_p * (count * len(kinds)))()
        for k, tensors in enumerate(kinds):
            if tensors is not None:
                self.point(k, tensors)
        self.offsets = (ctypes.c_int64 * (count + 1))()
        total = 0
        for i, param in enumerate(params):
            total += param.numel()
            self.offsets[i + 1] = total
        self.present = sum(1 << k for k, tensors in enumerate(kinds) if tensors is not None)
        # what the kernel writes: every kind but the gradients
        self.written = [t for k, ts in enumerate(kinds) if k != 1 and ts is not None for t in ts]

    def point(self, k: int, tensors: Sequence[torch.Tensor]) -> None:
        """Make kind ``k`` the given tensors (each must :func:`fit` its parameter)."""
        if len(tensors) != self.count:
            raise FusedKernelError(
                f"{self.rule}: kind {k} has {len(tensors)} tensors, not {self.count}"
            )
        pointers, base = self.pointers, k * self.count
        for i, tensor in enumerate(tensors):
            pointers[base + i] = tensor.data_ptr()

    def run(self, scalars: Sequence[float | torch.Tensor]) -> None:
        """Run the kernel with the step's ``scalars`` and bump the written tensors' autograd
        version counters, as any in-place torch op would."""
        first = scalars[0] if scalars else None
        by_member, members = None, 1
        if isinstance(first, torch.Tensor) and first.numel() > 1:
            if first.numel() != self.members:
                raise FusedKernelError(
                    f"{self.rule}: {first.numel()} per-member values for {self.members} members"
                )
            first = first.detach().to("cpu", torch.float64).contiguous()
            by_member = ctypes.cast(first.data_ptr(), ctypes.POINTER(ctypes.c_double))
            members, scalars = self.members, [0.0, *scalars[1:]]
        values = (ctypes.c_double * max(len(scalars), 1))(*(float(value) for value in scalars))
        self.function(
            self.count,
            self.pointers,
            self.present,
            self.offsets,
            values,
            by_member,
            members,
            torch.get_num_threads(),
        )
        del first  # held until the kernel returned
        torch.autograd.graph.increment_version(self.written)
