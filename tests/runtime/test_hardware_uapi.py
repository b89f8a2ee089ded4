"""The rocket uAPI structs and ioctl numbers against `include/uapi/drm/rocket_accel.h`
(Linux 6.18): sizes and field offsets worked out by hand from the header's __u32 / __u64 /
__s64 fields (natural alignment, no implicit padding), and the request numbers from the
asm-generic _IOC encoding: dir << 30 | size << 16 | 'd' << 8 | (0x40 + index)."""

from __future__ import annotations

import ctypes

import pytest

from runtime.hardware import uapi

LAYOUTS = {
    uapi.drm_rocket_create_bo: (24, {"size": 0, "handle": 4, "dma_address": 8, "offset": 16}),
    uapi.drm_rocket_prep_bo: (16, {"handle": 0, "reserved": 4, "timeout_ns": 8}),
    uapi.drm_rocket_fini_bo: (8, {"handle": 0, "reserved": 4}),
    uapi.drm_rocket_task: (8, {"regcmd": 0, "regcmd_count": 4}),
    uapi.drm_rocket_job: (
        40,
        {
            "tasks": 0,
            "in_bo_handles": 8,
            "out_bo_handles": 16,
            "task_count": 24,
            "task_struct_size": 28,
            "in_bo_handle_count": 32,
            "out_bo_handle_count": 36,
        },
    ),
    uapi.drm_rocket_submit: (
        24,
        {"jobs": 0, "job_count": 8, "job_struct_size": 12, "reserved": 16},
    ),
}


@pytest.mark.parametrize("struct", list(LAYOUTS), ids=lambda s: s.__name__)
def test_struct_layout_matches_the_header(struct):
    size, offsets = LAYOUTS[struct]
    assert ctypes.sizeof(struct) == size
    assert {name: getattr(struct, name).offset for name, _ in struct._fields_} == offsets


def test_field_widths_and_signedness():
    # the header's types: timeout_ns is the only signed field, regcmd a 32-bit address
    assert uapi.drm_rocket_prep_bo(timeout_ns=-1).timeout_ns == -1
    assert uapi.drm_rocket_task(regcmd=0x1_2345_6789).regcmd == 0x2345_6789
    assert uapi.drm_rocket_create_bo(dma_address=1 << 40).dma_address == 1 << 40


def test_rocket_ioctl_numbers():
    # CREATE_BO: IOWR (3), 24 bytes, nr 0x40; the others IOW (1) with their struct sizes
    assert uapi.DRM_IOCTL_ROCKET_CREATE_BO == 0xC018_6440
    assert uapi.DRM_IOCTL_ROCKET_SUBMIT == 0x4018_6441
    assert uapi.DRM_IOCTL_ROCKET_PREP_BO == 0x4010_6442
    assert uapi.DRM_IOCTL_ROCKET_FINI_BO == 0x4008_6443


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="drm_version is LP64 here")
def test_drm_version_on_64_bit():
    # 3 ints, 4 bytes of padding, then 3 (size_t, pointer) pairs
    assert ctypes.sizeof(uapi.drm_version) == 64
    assert uapi.drm_version.name_len.offset == 16 and uapi.drm_version.name.offset == 24
    assert uapi.drm_version.desc.offset == 56
    assert uapi.DRM_IOCTL_VERSION == 0xC040_6400
