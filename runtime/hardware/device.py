"""A rocket NPU node (`/dev/accel/accel*`, the mainline `rocket` accel driver) and its four
ioctls: `RocketDevice.open()` finds and opens the node, then `create_bo` / `map` /
`fini_bo` / `submit` / `prep_bo` drive it (anchors.md §1.9).

Every system call goes through an injectable pair, `ioctl(fd, request, struct) -> int` and
`mmap(fd, length, offset) -> mmap`, so that a fake device (`runtime.hardware.fake`) can
stand in for the kernel; by default they are `fcntl.ioctl` and a shared read-write
`mmap.mmap`. Failures are `RocketError`s of one line naming the ioctl, the node and errno;
no usable node is a `NoNpuDeviceError` naming what was looked for.

Buffer objects are CPU-cached: after the CPU writes a BO, `fini_bo` before the NPU reads it;
after the NPU writes one, `prep_bo` (which also waits for the job) before the CPU reads it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import glob
import mmap
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime.hardware import uapi

DEVICE_PATTERN = "/dev/accel/accel*"
DEFAULT_TIMEOUT_NS = 10_000_000_000  # the kernel gives a job 500 ms; a wait of 10 s is a hang
NAME_BYTES = 64  # room for the driver name DRM_IOCTL_VERSION copies out

Ioctl = Callable[[int, int, ctypes.Structure], int]
Mmap = Callable[[int, int, int], mmap.mmap]


class RocketError(RuntimeError):
    """An operation on the NPU device failed (one line: what, on which node, errno)."""


class NoNpuDeviceError(RocketError):
    """No rocket NPU node could be opened (none exists, permission denied, another driver)."""


@dataclass(frozen=True)
class BufferObject:
    """A GEM buffer object as DRM_IOCTL_ROCKET_CREATE_BO returned it."""

    handle: int
    size: int
    dma_address: int  # where the NPU sees it (valid for this fd only)
    offset: int  # the fake offset to mmap it at


@dataclass(frozen=True)
class RocketTask:
    """One task: its register commands' NPU address and their number of 64-bit words."""

    regcmd: int
    regcmd_count: int


@dataclass(frozen=True)
class RocketJob:
    """Tasks run in order on one core; the BOs it reads and writes (for implicit fencing)."""

    tasks: tuple[RocketTask, ...]
    in_bo_handles: tuple[int, ...] = ()
    out_bo_handles: tuple[int, ...] = ()


def system_ioctl(fd: int, request: int, arg: ctypes.Structure) -> int:
    # mutate: the kernel's writes to the struct (IOWR results) come back into `arg`
    return fcntl.ioctl(fd, request, arg, True)


def system_mmap(fd: int, length: int, offset: int) -> mmap.mmap:
    return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)


def _open_node(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


class RocketDevice:
    """An open rocket node: its fd and the ioctl / mmap pair that reaches it."""

    def __init__(self, fd: int, path: str, *, ioctl: Ioctl = system_ioctl,
                 mmap: Mmap = system_mmap) -> None:  # fmt: skip
        self.fd, self.path = fd, path
        self._ioctl, self._mmap = ioctl, mmap

    @classmethod
    def open(cls, pattern: str = DEVICE_PATTERN, *, ioctl: Ioctl = system_ioctl,
             mmap: Mmap = system_mmap) -> RocketDevice:  # fmt: skip
        """The first node matching `pattern` that opens and is driven by `rocket`."""
        nodes = sorted(glob.glob(pattern))
        if not nodes:
            raise NoNpuDeviceError(
                f"no NPU device: nothing matches {pattern} (no accel driver is loaded: an "
                f"RK3588 with the mainline rocket driver is needed)"
            )
        problems = []
        for path in nodes:
            try:
                device = cls(_open_node(path), path, ioctl=ioctl, mmap=mmap)
            except PermissionError:
                problems.append(f"{path}: permission denied (open it as a member of its group)")
                continue
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
                continue
            problem = device._not_rocket()
            if problem is None:
                return device
            device.close()
            problems.append(f"{path}: {problem}")
        raise NoNpuDeviceError(f"no rocket NPU device: {'; '.join(problems)}")

    def _not_rocket(self) -> str | None:
        """Why this node is not the rocket NPU, or None."""
        try:
            name = self.driver_name()
        except RocketError as exc:
            cause = exc.__cause__
            return f"not a DRM device ({_errno_text(cause) if isinstance(cause, OSError) else exc})"
        return None if name == uapi.DRIVER_NAME else f"driven by {name!r}, not rocket"

    # ------------------------------------------------------------------ ioctls
    def _call(self, request: int, arg: ctypes.Structure) -> int:
        try:
            return self._ioctl(self.fd, request, arg)
        except OSError as exc:
            name = uapi.IOCTL_NAMES.get(request, f"ioctl {request:#x}")
            raise RocketError(f"{name} on {self.path}: {_errno_text(exc)}") from exc

    def driver_name(self) -> str:
        """The driver behind the node (DRM_IOCTL_VERSION)."""
        name = ctypes.create_string_buffer(NAME_BYTES)
        version = uapi.drm_version(name_len=NAME_BYTES, name=ctypes.addressof(name))
        self._call(uapi.DRM_IOCTL_VERSION, version)
        # the kernel reports the full length but copies at most the buffer's size
        return name.raw[: min(version.name_len, NAME_BYTES)].decode(errors="replace")

    def create_bo(self, size: int) -> BufferObject:
        if not 0 < size < 1 << 32:
            raise RocketError(f"a buffer object of {size} bytes: the size must fit 32 bits")
        args = uapi.drm_rocket_create_bo(size=size)
        self._call(uapi.DRM_IOCTL_ROCKET_CREATE_BO, args)
        return BufferObject(args.handle, size, args.dma_address, args.offset)

    def map(self, bo: BufferObject) -> mmap.mmap:
        """The BO in the CPU's address space (read-write, shared with the NPU)."""
        try:
            return self._mmap(self.fd, bo.size, bo.offset)
        except OSError as exc:
            raise RocketError(f"mmap of BO {bo.handle} on {self.path}: {exc}") from exc

    def prep_bo(self, handle: int, timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:
        """Wait for the NPU's writes to the BO and make them visible to the CPU."""
        # the uAPI's timeout is an absolute CLOCK_MONOTONIC time (drm_timeout_abs_to_jiffies)
        deadline = time.monotonic_ns() + timeout_ns
        self._call(uapi.DRM_IOCTL_ROCKET_PREP_BO,
                   uapi.drm_rocket_prep_bo(handle=handle, timeout_ns=deadline))  # fmt: skip

    def fini_bo(self, handle: int) -> None:
        """Make the CPU's writes to the BO visible to the NPU."""
        self._call(uapi.DRM_IOCTL_ROCKET_FINI_BO, uapi.drm_rocket_fini_bo(handle=handle))

    def submit(self, jobs: Sequence[RocketJob]) -> None:
        """Queue `jobs` (the kernel orders them by their BOs' fences and returns at once)."""
        keep: list[ctypes.Array] = []  # what the structs point to, alive over the ioctl
        array = (uapi.drm_rocket_job * len(jobs))()
        for index, job in enumerate(jobs):
            array[index] = _job_struct(job, keep)
        args = uapi.drm_rocket_submit(
            jobs=ctypes.addressof(array),
            job_count=len(jobs),
            job_struct_size=ctypes.sizeof(uapi.drm_rocket_job),
        )
        self._call(uapi.DRM_IOCTL_ROCKET_SUBMIT, args)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RocketDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _errno_text(exc: OSError) -> str:
    """`Inappropriate ioctl for device (ENOTTY)`: the message and errno's name."""
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{exc.strerror or exc} ({code})"


def _job_struct(job: RocketJob, keep: list[ctypes.Array]) -> uapi.drm_rocket_job:
    for task in job.tasks:
        if not 0 <= task.regcmd < 1 << 32:
            raise RocketError(f"task regcmd address {task.regcmd:#x} does not fit 32 bits")
    tasks = (uapi.drm_rocket_task * len(job.tasks))(
        *[uapi.drm_rocket_task(t.regcmd, t.regcmd_count) for t in job.tasks]
    )
    ins = (ctypes.c_uint32 * len(job.in_bo_handles))(*job.in_bo_handles)
    outs = (ctypes.c_uint32 * len(job.out_bo_handles))(*job.out_bo_handles)
    keep += [tasks, ins, outs]
    return uapi.drm_rocket_job(
        tasks=ctypes.addressof(tasks),
        in_bo_handles=ctypes.addressof(ins),
        out_bo_handles=ctypes.addressof(outs),
        task_count=len(job.tasks),
        task_struct_size=ctypes.sizeof(uapi.drm_rocket_task),
        in_bo_handle_count=len(job.in_bo_handles),
        out_bo_handle_count=len(job.out_bo_handles),
    )
