"""The mainline `rocket` accel driver's userspace API, laid out as
`include/uapi/drm/rocket_accel.h` (Linux 6.18) lays it out: the ioctl argument structs with
the header's names and field names, and the ioctl request numbers.

    DRM_IOCTL_ROCKET_CREATE_BO  DRM_IOWR(0x40 + 0x00, drm_rocket_create_bo)  size -> handle,
                                dma_address (the NPU's address, per fd), offset (for mmap)
    DRM_IOCTL_ROCKET_SUBMIT     DRM_IOW(0x40 + 0x01, drm_rocket_submit)  jobs of tasks
    DRM_IOCTL_ROCKET_PREP_BO    DRM_IOW(0x40 + 0x02, drm_rocket_prep_bo)  wait, sync for CPU
    DRM_IOCTL_ROCKET_FINI_BO    DRM_IOW(0x40 + 0x03, drm_rocket_fini_bo)  sync for the NPU

plus the generic `DRM_IOCTL_VERSION` (`drm.h`), which names the driver behind a node.

The request numbers follow the asm-generic `_IOC` encoding (direction in bits 30-31, size
in 16-29, type in 8-15, number in 0-7) that arm64 (the RK3588) and x86 share. Pointer
fields of the rocket structs are `__u64` in the header (the same layout for 32- and 64-bit
userspace): they hold `ctypes.addressof` of arrays the caller keeps alive over the ioctl.
"""

from __future__ import annotations

import ctypes

# include/uapi/asm-generic/ioctl.h
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_SIZEBITS = 14
_IOC_WRITE, _IOC_READ = 1, 2

# include/uapi/drm/drm.h
DRM_IOCTL_BASE = ord("d")
DRM_COMMAND_BASE = 0x40  # driver-specific ioctls are numbered from here

# include/uapi/drm/rocket_accel.h
DRM_ROCKET_CREATE_BO = 0x00
DRM_ROCKET_SUBMIT = 0x01
DRM_ROCKET_PREP_BO = 0x02
DRM_ROCKET_FINI_BO = 0x03

DRIVER_NAME = "rocket"  # what DRM_IOCTL_VERSION reports for the NPU's node


def _ioc(direction: int, nr: int, struct: type[ctypes.Structure]) -> int:
    size = ctypes.sizeof(struct)
    if size >= 1 << _IOC_SIZEBITS:
        raise ValueError(f"{struct.__name__} ({size} bytes) does not fit an ioctl number")
    return (
        direction << _IOC_DIRSHIFT
        | size << _IOC_SIZESHIFT
        | DRM_IOCTL_BASE << _IOC_TYPESHIFT
        | nr << _IOC_NRSHIFT
    )


def drm_iow(nr: int, struct: type[ctypes.Structure]) -> int:
    """`DRM_IOW(nr, struct)`: userspace writes the struct, the kernel only reads it."""
    return _ioc(_IOC_WRITE, nr, struct)


def drm_iowr(nr: int, struct: type[ctypes.Structure]) -> int:
    """`DRM_IOWR(nr, struct)`: the kernel also writes results back into the struct."""
    return _ioc(_IOC_READ | _IOC_WRITE, nr, struct)


class drm_rocket_create_bo(ctypes.Structure):  # the header's names, so they grep
    _fields_ = [
        ("size", ctypes.c_uint32),  # in: bytes requested
        ("handle", ctypes.c_uint32),  # out: GEM handle
        ("dma_address", ctypes.c_uint64),  # out: the BO in the NPU's address space (per fd)
        ("offset", ctypes.c_uint64),  # out: the fake offset to mmap the BO at
    ]


class drm_rocket_prep_bo(ctypes.Structure):
    _fields_ = [
        ("handle", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),  # must be zero
        ("timeout_ns", ctypes.c_int64),  # absolute CLOCK_MONOTONIC deadline for NPU writers
    ]


class drm_rocket_fini_bo(ctypes.Structure):
    _fields_ = [
        ("handle", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),  # must be zero
    ]


class drm_rocket_task(ctypes.Structure):
    _fields_ = [
        ("regcmd", ctypes.c_uint32),  # NPU address of the task's first register command
        ("regcmd_count", ctypes.c_uint32),  # its number of 64-bit command words (> 0)
    ]


class drm_rocket_job(ctypes.Structure):
    _fields_ = [
        ("tasks", ctypes.c_uint64),  # pointer to drm_rocket_task[task_count]
        ("in_bo_handles", ctypes.c_uint64),  # pointer to __u32[in_bo_handle_count]
        ("out_bo_handles", ctypes.c_uint64),  # pointer to __u32[out_bo_handle_count]
        ("task_count", ctypes.c_uint32),
        ("task_struct_size", ctypes.c_uint32),  # the stride of `tasks` (>= sizeof task)
        ("in_bo_handle_count", ctypes.c_uint32),
        ("out_bo_handle_count", ctypes.c_uint32),
    ]


class drm_rocket_submit(ctypes.Structure):
    _fields_ = [
        ("jobs", ctypes.c_uint64),  # pointer to drm_rocket_job[job_count]
        ("job_count", ctypes.c_uint32),
        ("job_struct_size", ctypes.c_uint32),  # the stride of `jobs` (>= sizeof job)
        ("reserved", ctypes.c_uint64),  # must be zero
    ]


class drm_version(ctypes.Structure):  # drm.h: native int, size_t and pointers
    _fields_ = [
        ("version_major", ctypes.c_int),
        ("version_minor", ctypes.c_int),
        ("version_patchlevel", ctypes.c_int),
        ("name_len", ctypes.c_size_t),  # in: buffer size; out: the name's length
        ("name", ctypes.c_void_p),  # char * the kernel copies the driver name into
        ("date_len", ctypes.c_size_t),
        ("date", ctypes.c_void_p),
        ("desc_len", ctypes.c_size_t),
        ("desc", ctypes.c_void_p),
    ]


DRM_IOCTL_VERSION = drm_iowr(0x00, drm_version)
DRM_IOCTL_ROCKET_CREATE_BO = drm_iowr(DRM_COMMAND_BASE + DRM_ROCKET_CREATE_BO, drm_rocket_create_bo)
DRM_IOCTL_ROCKET_SUBMIT = drm_iow(DRM_COMMAND_BASE + DRM_ROCKET_SUBMIT, drm_rocket_submit)
DRM_IOCTL_ROCKET_PREP_BO = drm_iow(DRM_COMMAND_BASE + DRM_ROCKET_PREP_BO, drm_rocket_prep_bo)
DRM_IOCTL_ROCKET_FINI_BO = drm_iow(DRM_COMMAND_BASE + DRM_ROCKET_FINI_BO, drm_rocket_fini_bo)

IOCTL_NAMES = {
    DRM_IOCTL_VERSION: "DRM_IOCTL_VERSION",
    DRM_IOCTL_ROCKET_CREATE_BO: "DRM_IOCTL_ROCKET_CREATE_BO",
    DRM_IOCTL_ROCKET_SUBMIT: "DRM_IOCTL_ROCKET_SUBMIT",
    DRM_IOCTL_ROCKET_PREP_BO: "DRM_IOCTL_ROCKET_PREP_BO",
    DRM_IOCTL_ROCKET_FINI_BO: "DRM_IOCTL_ROCKET_FINI_BO",
}
