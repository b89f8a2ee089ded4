"""The hardware backend: a container's NPU jobs on the RK3588's NPU through the mainline
Linux `rocket` accel driver (`/dev/accel/accel*`), with the simulator path's interface.

- `uapi.py`: the driver's ioctl structs and request numbers, as `rocket_accel.h` has them;
- `device.py`: `RocketDevice` (open the node, CREATE_BO / mmap / PREP_BO / FINI_BO / SUBMIT
  through an injectable ioctl + mmap pair), `NoNpuDeviceError` when there is no NPU;
- `runner.py`: `RocketRunner`, the simulator loader's contract over BOs, one job at a time;
- `fake.py`: `FakeRocketDevice`, the kernel side of those ioctls with the simulator as NPU.

`runtime.session.Session(path, backend="rocket")` runs a container's jobs through these.
"""

from runtime.hardware.device import NoNpuDeviceError, RocketDevice, RocketError
from runtime.hardware.runner import RocketRunner

__all__ = ["NoNpuDeviceError", "RocketDevice", "RocketError", "RocketRunner"]
