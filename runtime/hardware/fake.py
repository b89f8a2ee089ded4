"""A rocket NPU in process: the kernel side of the four rocket ioctls (plus
DRM_IOCTL_VERSION), with our simulator as the NPU. It stands in for `/dev/accel/accel*` so
the hardware path runs, and is tested, where no RK3588 is.

    fake = FakeRocketDevice(target)
    device = fake.device()          # a RocketDevice whose ioctl / mmap reach the fake

What it models, as `drivers/accel/rocket` and the NPU do:
- CREATE_BO: a buffer in simulated memory (`runtime.simulator.Memory`, handle = buffer id,
  the NPU address = its base, from 0x4000_0000), handles from 1, an mmap offset per BO;
- caches: the CPU's mapping and the NPU's memory are separate copies, FINI_BO copies the
  mapping to the NPU, PREP_BO copies back, so a missing sync shows as stale data;
- SUBMIT: the structs read from the caller's memory through the pointers in them, with the
  kernel's checks (struct sizes, reserved fields, no empty job, counts > 0, known handles);
  the tasks of a job run in order, each on its own (the kernel starts each task with
  TASK_NUMBER 1: the trailer's chain is not followed), sharing one register file (a fresh
  one per job, as the simulator path has one per `run_tasks`);
- the PC fetches (regcmd_count + 1) / 2 128-bit pairs: a count too short never reaches the
  op-enable word (an EIO here, a job timeout on the NPU); the op-enable word must also be
  the last word counted (an EINVAL here: stricter than the kernel, which would run on);
- synchronously: a job is done when SUBMIT returns; a simulator error is an EIO.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from backends.targets import Target, get_target
from runtime.hardware import uapi
from runtime.hardware.device import RocketDevice, RocketJob, RocketTask
from runtime.simulator import Memory, RegisterFile, SimulatorError, TaskTrace, run_tasks
from runtime.simulator.memory import WORD_BYTES

PAGE = mmap.PAGESIZE
Struct = TypeVar("Struct", bound=ctypes.Structure)
FIRST_MMAP_PAGE = 0x10_0000  # DRM_FILE_PAGE_OFFSET_START on 64-bit: fake offsets start high
# where the fake's IOMMU space starts: away from where the simulator's loader puts buffers,
# so a program that only runs at those addresses fails
NPU_ADDRESS_BASE = 0x4000_0000


class _TaskDone(Exception):
    """Stops `run_tasks` after one task (the kernel starts each task on its own)."""

    def __init__(self, trace: TaskTrace) -> None:
        super().__init__(trace)
        self.trace = trace


def _stop(trace: TaskTrace) -> None:
    raise _TaskDone(trace)


@dataclass
class _Bo:
    size: int
    offset: int
    cpu: mmap.mmap  # the CPU's view (its caches): synced with NPU memory by PREP / FINI only


class FakeRocketDevice:
    """The kernel driver and NPU behind a fake rocket node (see the module docstring)."""

    def __init__(self, target: Target | None = None, driver: str = uapi.DRIVER_NAME) -> None:
        self.target = target or get_target()
        self.driver = driver
        self.memory = Memory(NPU_ADDRESS_BASE)  # the NPU's view of the BOs
        self.bos: dict[int, _Bo] = {}
        self.submitted: list[RocketJob] = []  # every job SUBMIT decoded, for tests to inspect
        self.calls: list[str] = []  # the ioctls in order
        self._handlers: dict[int, Callable[[ctypes.Structure], int]] = {
            uapi.DRM_IOCTL_VERSION: self._version,
            uapi.DRM_IOCTL_ROCKET_CREATE_BO: self._create_bo,
            uapi.DRM_IOCTL_ROCKET_SUBMIT: self._submit,
            uapi.DRM_IOCTL_ROCKET_PREP_BO: self._prep_bo,
            uapi.DRM_IOCTL_ROCKET_FINI_BO: self._fini_bo,
        }

    def device(self) -> RocketDevice:
        """A RocketDevice on this fake; it owns a real descriptor (of /dev/null) to close."""
        fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        return RocketDevice(fd, "/dev/accel/accel0 (fake)", ioctl=self.ioctl, mmap=self.mmap)

    # ------------------------------------------------------------------ the system calls
    def ioctl(self, fd: int, request: int, arg: ctypes.Structure) -> int:
        handler = self._handlers.get(request)
        if handler is None:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        self.calls.append(uapi.IOCTL_NAMES[request])
        return handler(arg)

    def mmap(self, fd: int, length: int, offset: int) -> mmap.mmap:
        for bo in self.bos.values():
            if bo.offset == offset and 0 < length <= len(bo.cpu):
                return bo.cpu
        raise OSError(errno.EINVAL, f"no BO of at least {length} bytes at offset {offset:#x}")

    # ------------------------------------------------------------------ the ioctls
    def _version(self, arg: ctypes.Structure) -> int:
        version = uapi.drm_version.from_buffer(arg)
        name = self.driver.encode()
        if version.name and version.name_len:
            ctypes.memmove(version.name, name, min(len(name), version.name_len))
        version.name_len = len(name)  # drm_copy_field: the full length, whatever was copied
        return 0

    def _create_bo(self, arg: ctypes.Structure) -> int:
        args = uapi.drm_rocket_create_bo.from_buffer(arg)
        if args.size == 0:
            raise OSError(errno.EINVAL, "a BO of 0 bytes")
        handle = len(self.bos) + 1  # GEM handles start at 1
        pages = -(-args.size // PAGE)
        bo = _Bo(args.size, (FIRST_MMAP_PAGE + 16 * handle) * PAGE, mmap.mmap(-1, pages * PAGE))
        self.bos[handle] = bo
        args.handle = handle
        args.dma_address = self.memory.allocate(handle, args.size)
        args.offset = bo.offset
        return 0

    def _bo(self, handle: int, reserved: int) -> _Bo:
        if reserved:
            raise OSError(errno.EINVAL, "reserved field is not zero")
        if handle not in self.bos:
            raise OSError(errno.ENOENT, f"no BO with handle {handle}")
        return self.bos[handle]

    def _prep_bo(self, arg: ctypes.Structure) -> int:
        args = uapi.drm_rocket_prep_bo.from_buffer(arg)
        bo = self._bo(args.handle, args.reserved)
        bo.cpu[: bo.size] = self.memory.buffers[args.handle].tobytes()
        return 0

    def _fini_bo(self, arg: ctypes.Structure) -> int:
        args = uapi.drm_rocket_fini_bo.from_buffer(arg)
        bo = self._bo(args.handle, args.reserved)
        self.memory.buffers[args.handle][:] = np.frombuffer(bo.cpu, np.uint8, count=bo.size)
        return 0

    def _submit(self, arg: ctypes.Structure) -> int:
        args = uapi.drm_rocket_submit.from_buffer(arg)
        if args.job_count == 0:
            return 0
        if args.job_struct_size < ctypes.sizeof(uapi.drm_rocket_job) or args.reserved:
            raise OSError(errno.EINVAL, "job_struct_size too small or reserved not zero")
        structs = [
            _copy_from_user(uapi.drm_rocket_job, args.jobs + i * args.job_struct_size)
            for i in range(args.job_count)
        ]
        jobs = [self._job(job) for job in structs]  # all copied in before any runs
        for job in jobs:
            self.submitted.append(job)
            self._run(job)
        return 0

    # ------------------------------------------------------------------ jobs
    def _job(self, job: uapi.drm_rocket_job) -> RocketJob:
        if job.task_count == 0 or job.task_struct_size < ctypes.sizeof(uapi.drm_rocket_task):
            raise OSError(errno.EINVAL, "no tasks, or task_struct_size too small")
        tasks = []
        for i in range(job.task_count):
            task = _copy_from_user(uapi.drm_rocket_task, job.tasks + i * job.task_struct_size)
            if task.regcmd_count == 0:
                raise OSError(errno.EINVAL, f"task {i}: regcmd_count is 0")
            tasks.append(RocketTask(task.regcmd, task.regcmd_count))
        ins = _handles(job.in_bo_handles, job.in_bo_handle_count)
        outs = _handles(job.out_bo_handles, job.out_bo_handle_count)
        for handle in ins + outs:
            self._bo(handle, 0)
        return RocketJob(tuple(tasks), ins, outs)

    def _run(self, job: RocketJob) -> None:
        registers = RegisterFile()  # one core runs the whole job: its registers persist
        for task in job.tasks:
            self._run_task(task, registers)

    def _run_task(self, task: RocketTask, registers: RegisterFile) -> None:
        words = self._fetch(task)
        try:
            run_tasks(words, self.memory, 0, self.target, registers, after_task=_stop)
        except _TaskDone as done:
            if done.trace.word_count != task.regcmd_count:
                raise OSError(
                    errno.EINVAL,
                    f"task at {task.regcmd:#x}: regcmd_count {task.regcmd_count}, but its "
                    f"op-enable word is word {done.trace.word_count}",
                ) from None
            return
        except SimulatorError as exc:
            raise OSError(errno.EIO, f"NPU fault in the task at {task.regcmd:#x}: {exc}") from exc
        raise AssertionError("run_tasks returned without finishing a task")

    def _fetch(self, task: RocketTask) -> list[int]:
        """The words the PC fetches for `task`: PC_DATA_AMOUNT = (count + 1) / 2 - 1 pairs."""
        try:
            handle, offset = self.memory.locate(task.regcmd, task.regcmd_count * WORD_BYTES)
        except SimulatorError as exc:
            raise OSError(errno.EIO, f"regcmd fetch: {exc}") from exc
        fetched = (task.regcmd_count + 1) // 2 * 2 * WORD_BYTES
        raw = self.memory.buffers[handle][offset : offset + fetched].tobytes()
        raw = raw[: len(raw) // WORD_BYTES * WORD_BYTES]
        return [int(w) for w in np.frombuffer(raw, "<u8")]


def _copy_from_user(struct: type[Struct], address: int) -> Struct:
    """`copy_from_user`: the struct at `address` in this process."""
    return struct.from_buffer_copy(ctypes.string_at(address, ctypes.sizeof(struct)))


def _handles(address: int, count: int) -> tuple[int, ...]:
    return tuple((ctypes.c_uint32 * count).from_buffer_copy(ctypes.string_at(address, 4 * count)))
