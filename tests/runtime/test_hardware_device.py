"""`RocketDevice` over the fake rocket node (`runtime.hardware.fake`): finding the node and the
one-line error when there is no NPU, BOs (handles, NPU addresses, mmap, cache syncs), the
structs SUBMIT passes as the kernel reads them, the kernel's argument checks, and ioctl
failures as `RocketError`s naming the ioctl."""

from __future__ import annotations

import ctypes
import errno
import os
import termios
from pathlib import Path

import pytest

from runtime.hardware import NoNpuDeviceError, RocketDevice, RocketError, uapi
from runtime.hardware import device as device_module
from runtime.hardware.device import RocketJob, RocketTask
from runtime.hardware.fake import FakeRocketDevice


def nodes(tmp_path: Path, *names: str) -> str:
    """Files standing for accel nodes; the pattern that finds them."""
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return str(tmp_path / "accel*")


def test_no_node_is_a_clear_error(tmp_path):
    pattern = str(tmp_path / "accel*")
    with pytest.raises(NoNpuDeviceError, match=r"no NPU device: nothing matches .*accel\*"):
        RocketDevice.open(pattern)


def test_no_node_on_this_machine_names_dev_accel():
    if list(Path("/dev/accel").glob("accel*")) if Path("/dev/accel").exists() else []:
        pytest.skip("this machine has an accel node")
    with pytest.raises(NoNpuDeviceError, match=r"/dev/accel/accel\*") as caught:
        RocketDevice.open()
    assert isinstance(caught.value, RuntimeError) and "\n" not in str(caught.value)


def test_permission_denied_names_the_node(tmp_path, monkeypatch):
    def denied(path: str) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(device_module, "_open_node", denied)
    pattern = nodes(tmp_path, "accel0")
    with pytest.raises(
        NoNpuDeviceError, match=r"accel0: permission denied \(open it as a member of its group\)$"
    ):
        RocketDevice.open(pattern)


def test_a_file_that_is_not_a_drm_node(tmp_path):
    # the real fcntl.ioctl: DRM_IOCTL_VERSION on a regular file fails with ENOTTY
    pattern = nodes(tmp_path, "accel0")
    with pytest.raises(NoNpuDeviceError, match=r"accel0: not a DRM device \(.*\(ENOTTY\)\)"):
        RocketDevice.open(pattern)


def test_another_accel_driver_is_not_the_npu(tmp_path):
    fake = FakeRocketDevice(driver="ivpu")
    pattern = nodes(tmp_path, "accel0")
    with pytest.raises(NoNpuDeviceError, match=r"accel0: driven by 'ivpu', not rocket"):
        RocketDevice.open(pattern, ioctl=fake.ioctl, mmap=fake.mmap)


def test_open_picks_the_rocket_node(tmp_path):
    fake = FakeRocketDevice()
    pattern = nodes(tmp_path, "accel0")
    with RocketDevice.open(pattern, ioctl=fake.ioctl, mmap=fake.mmap) as device:
        assert device.path == str(tmp_path / "accel0")
        assert device.driver_name() == "rocket"
    assert device.fd == -1


def test_buffer_objects_have_handles_addresses_and_mappings():
    fake = FakeRocketDevice()
    with fake.device() as device:
        a, b = device.create_bo(100), device.create_bo(5000)
        assert (a.handle, b.handle) == (1, 2)  # GEM handles start at 1
        assert a.dma_address != b.dma_address and a.offset != b.offset
        assert a.offset % 4096 == 0 and b.offset % 4096 == 0  # mmap offsets are in pages
        mapping = device.map(b)
        assert len(mapping) >= 5000
        assert fake.calls == ["DRM_IOCTL_ROCKET_CREATE_BO"] * 2


def test_cpu_writes_reach_the_npu_only_after_fini_bo():
    fake = FakeRocketDevice()
    with fake.device() as device:
        bo = device.create_bo(16)
        mapping = device.map(bo)
        mapping[:4] = b"\x01\x02\x03\x04"
        assert fake.memory.read(bo.dma_address, 4) == bytes(4)  # still in the CPU's cache
        device.fini_bo(bo.handle)
        assert fake.memory.read(bo.dma_address, 4) == b"\x01\x02\x03\x04"
        fake.memory.write(bo.dma_address + 8, b"\xff")  # as the NPU would
        assert mapping[8] == 0
        device.prep_bo(bo.handle)
        assert mapping[8] == 0xFF


def test_an_unknown_handle_names_the_ioctl_and_errno():
    with (
        FakeRocketDevice().device() as device,
        pytest.raises(RocketError, match=r"^DRM_IOCTL_ROCKET_PREP_BO on .*: .*\(ENOENT\)$"),
    ):
        device.prep_bo(7)


def test_submit_rejects_a_zero_count_and_unknown_handles():
    fake = FakeRocketDevice()
    with fake.device() as device:
        bo = device.create_bo(64)
        with pytest.raises(
            RocketError, match=r"DRM_IOCTL_ROCKET_SUBMIT.*regcmd_count is 0.*EINVAL"
        ):
            device.submit([RocketJob((RocketTask(bo.dma_address, 0),), (bo.handle,), ())])
        with pytest.raises(RocketError, match=r"DRM_IOCTL_ROCKET_SUBMIT.*handle 9.*ENOENT"):
            device.submit([RocketJob((RocketTask(bo.dma_address, 4),), (bo.handle,), (9,))])
    assert fake.submitted == []


def test_the_kernels_argument_checks():
    fake = FakeRocketDevice()
    job = uapi.drm_rocket_job()
    jobs = (uapi.drm_rocket_job * 1)(job)
    small = uapi.drm_rocket_submit(jobs=ctypes.addressof(jobs), job_count=1, job_struct_size=32)
    with pytest.raises(OSError) as caught:
        fake.ioctl(-1, uapi.DRM_IOCTL_ROCKET_SUBMIT, small)
    assert caught.value.errno == errno.EINVAL
    reserved = uapi.drm_rocket_submit(jobs=ctypes.addressof(jobs), job_count=1,
                                      job_struct_size=40, reserved=1)  # fmt: skip
    with pytest.raises(OSError) as caught:
        fake.ioctl(-1, uapi.DRM_IOCTL_ROCKET_SUBMIT, reserved)
    assert caught.value.errno == errno.EINVAL
    no_tasks = uapi.drm_rocket_submit(jobs=ctypes.addressof(jobs), job_count=1, job_struct_size=40)
    with pytest.raises(OSError) as caught:  # task_count 0
        fake.ioctl(-1, uapi.DRM_IOCTL_ROCKET_SUBMIT, no_tasks)
    assert caught.value.errno == errno.EINVAL
    with pytest.raises(OSError) as caught:
        fake.ioctl(-1, 0x4008_6499, uapi.drm_rocket_fini_bo())
    assert caught.value.errno == errno.ENOTTY


def test_a_larger_job_struct_stride_is_honoured():
    # forward compatibility: the kernel strides the array by job_struct_size and reads
    # sizeof(job) at each; the second job (at byte 48) names an unknown out-BO
    fake = FakeRocketDevice()
    with fake.device() as device:
        bo = device.create_bo(64)
    raw = (ctypes.c_uint8 * 96)()
    tasks = (uapi.drm_rocket_task * 1)(uapi.drm_rocket_task(bo.dma_address, 4))
    handle = ctypes.c_uint32(9)
    first = uapi.drm_rocket_job(tasks=ctypes.addressof(tasks), task_count=1, task_struct_size=8)
    second = uapi.drm_rocket_job(tasks=ctypes.addressof(tasks), task_count=1, task_struct_size=8,
                                 out_bo_handles=ctypes.addressof(handle), out_bo_handle_count=1)  # fmt: skip
    ctypes.memmove(ctypes.addressof(raw), ctypes.addressof(first), 40)
    ctypes.memmove(ctypes.addressof(raw) + 48, ctypes.addressof(second), 40)
    submit = uapi.drm_rocket_submit(jobs=ctypes.addressof(raw), job_count=2, job_struct_size=48)
    with pytest.raises(OSError, match="no BO with handle 9"):
        fake.ioctl(-1, uapi.DRM_IOCTL_ROCKET_SUBMIT, submit)
    assert fake.submitted == []  # every job is checked before any runs


def test_the_system_ioctl_writes_results_back_into_the_struct():
    # what DRM_IOCTL_ROCKET_CREATE_BO's outputs rely on, shown with FIONREAD on a pipe
    class Count(ctypes.Structure):
        _fields_ = [("bytes", ctypes.c_int)]

    read, write = os.pipe()
    try:
        os.write(write, b"hello")
        count = Count(0)
        device_module.system_ioctl(read, termios.FIONREAD, count)
        assert count.bytes == 5
    finally:
        os.close(read)
        os.close(write)


def test_the_system_mmap_is_shared_and_writable(tmp_path):
    path = tmp_path / "bo"
    path.write_bytes(bytes(4096))
    fd = os.open(path, os.O_RDWR)
    try:
        mapping = device_module.system_mmap(fd, 4096, 0)
        mapping[10:12] = b"ok"
        mapping.close()
    finally:
        os.close(fd)
    assert path.read_bytes()[10:12] == b"ok"
