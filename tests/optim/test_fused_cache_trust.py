"""The fused kernels' cache loads code only from this user's private folder and files
(issue 17, item 1): a library planted by someone else is never loaded (its constructor
would run before any check), and a cached library missing a kernel is rebuilt."""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from optlab.optim import fused_cpu

PLANTED = r"""
#include <cstdio>
extern "C" {
__attribute__((constructor)) static void planted() {
  FILE* f = std::fopen("MARKER", "w");
  if (f) { std::fputs("ran", f); std::fclose(f); }
}
int optlab_fused_cpu_abi() { return 3; }
}
"""

NO_KERNELS = 'extern "C" int optlab_fused_cpu_abi() { return 3; }\n'


@pytest.fixture
def compiler() -> list[str]:
    found = fused_cpu._compiler()
    if found is None or not hasattr(os, "getuid"):
        pytest.skip("no C++ compiler, or no POSIX owners, on this machine")
    return found


@pytest.fixture
def fresh(monkeypatch, tmp_path) -> Path:
    """A process state with no kernels loaded yet and a temporary directory of its own."""
    for name, value in (("_library", None), ("_failure", None), ("_kernels", {})):
        monkeypatch.setattr(fused_cpu, name, value)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(fused_cpu.tempfile, "tempdir", str(scratch))
    return scratch


def _compile(compiler: list[str], code: str, out: Path) -> Path:
    source = out.with_suffix(".cpp")
    source.write_text(code)
    subprocess.run([*compiler, "-shared", "-fPIC", str(source), "-o", str(out)], check=True)
    return out


def _planted(compiler: list[str], tmp_path: Path, marker: Path) -> Path:
    return _compile(compiler, PLANTED.replace("MARKER", str(marker)), tmp_path / "planted.so")


def _cached_name(compiler: list[str]) -> str:
    """The file name the kernels are looked up under, computed as fused_cpu does."""
    source = resources.files("optlab.optim").joinpath(fused_cpu.SOURCE_NAME).read_bytes()
    return fused_cpu.library_name(source, compiler, fused_cpu.FLAGS)


def test_a_library_planted_in_a_world_writable_cache_is_never_loaded(
    monkeypatch, tmp_path, compiler, fresh
) -> None:
    cache = tmp_path / "shared-cache"
    kernels = cache / "kernels"
    kernels.mkdir(parents=True)
    kernels.chmod(0o777)  # anyone may write here
    marker = tmp_path / "constructor-ran"
    planted = _planted(compiler, tmp_path, marker)
    os.replace(planted, kernels / _cached_name(compiler))
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(cache))
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    assert not marker.exists()  # the planted constructor never ran
    assert fused_cpu.kernel("imo", fused_cpu.torch.float32) is not None
    assert fused_cpu.kernel_folder() == fresh / f"optlab-{fused_cpu._user()}" / "kernels"


def test_a_library_owned_by_another_user_is_rebuilt_not_loaded(
    monkeypatch, tmp_path, compiler, fresh
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(cache))
    kernels = fused_cpu.kernel_folder()
    assert kernels == cache / "kernels"
    marker = tmp_path / "constructor-ran"
    target = kernels / _cached_name(compiler)
    os.replace(_planted(compiler, tmp_path, marker), target)
    other = os.getuid() + 4242
    if os.getuid() == 0:
        os.chown(target, other, -1)
    else:  # cannot give a file away: pretend to be someone else instead
        monkeypatch.setattr(fused_cpu, "_owner", lambda: other)
        kernels.chmod(0o700)
        monkeypatch.setattr(fused_cpu, "_check_private", lambda folder: None)
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    assert not marker.exists()


def test_a_symbolic_link_in_the_cache_is_not_followed(
    monkeypatch, tmp_path, compiler, fresh
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(cache))
    kernels = fused_cpu.kernel_folder()
    marker = tmp_path / "constructor-ran"
    planted = _planted(compiler, tmp_path, marker)
    (kernels / _cached_name(compiler)).symlink_to(planted)
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    assert not marker.exists()
    assert not (kernels / _cached_name(compiler)).is_symlink()  # replaced by a build
    # a linked kernels folder is refused as a whole
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    linked = tmp_path / "linked-cache"
    linked.mkdir()
    (linked / "kernels").symlink_to(elsewhere)
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(linked))
    assert fused_cpu.kernel_folder() == fresh / f"optlab-{fused_cpu._user()}" / "kernels"


def test_a_cached_library_missing_a_kernel_is_rebuilt(
    monkeypatch, tmp_path, compiler, fresh
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(cache))
    target = fused_cpu.kernel_folder() / _cached_name(compiler)
    os.replace(_compile(compiler, NO_KERNELS, tmp_path / "stale.so"), target)
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    assert fused_cpu.kernel("mamgd", fused_cpu.torch.float64) is not None
