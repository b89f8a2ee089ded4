"""Running a container's NPU jobs on a rocket device with the simulator path's interface:
what `runtime.simulator.load` + `run_tasks` give the session, over buffer objects.

    runner = RocketRunner(device, words, relocations, buffers, COMMANDS, read_only={WEIGHTS})
    write_tensor(runner.memory, where, array)          # the same helpers as on the simulator
    runner.run_job([(first_word, word_count), ...])     # one NPU job: its tasks in order
    read_tensor(runner.memory, where)

One BO per buffer id (the command blob's included), each mapped into the CPU; `memory` is a
`runtime.simulator.Memory` whose buffers are those mappings at the BOs' NPU addresses, so the
simulator's relocation patching (`patch`) and tensor helpers work on it unchanged. A job is
submitted as Mesa submits one: a `drm_rocket_task` per task (its regcmd address and word
count; the kernel starts each task itself, one interrupt per task), the BOs it only reads as
in-BOs and the others as out-BOs; FINI_BO before and PREP_BO after keep CPU and NPU views
coherent, and PREP_BO is also the wait for the job.
"""

from __future__ import annotations

import mmap
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from backends.container import Relocation
from runtime.hardware.device import (
    DEFAULT_TIMEOUT_NS,
    BufferObject,
    RocketDevice,
    RocketJob,
    RocketTask,
)
from runtime.simulator.memory import WORD_BYTES, Memory, patch


class RocketRunner:
    """A program's buffers in BOs on `device`, its relocations patched to their addresses."""

    def __init__(self, device: RocketDevice, words: Sequence[int],
                 relocations: Iterable[Relocation], buffers: Mapping[int, int | bytes],
                 commands_buffer: int, read_only: Collection[int] = (),
                 timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:  # fmt: skip
        """`buffers`: id -> size or content (the command buffer is sized from `words`);
        `read_only`: the buffers no job writes (the weights); the commands are read-only."""
        self.device, self.timeout_ns = device, timeout_ns
        self.bos: dict[int, BufferObject] = {}
        self._mappings: dict[int, mmap.mmap] = {}
        self.memory = Memory()
        sizes = {i: c if isinstance(c, int) else len(c) for i, c in buffers.items()}
        sizes[commands_buffer] = len(words) * WORD_BYTES
        for buffer_id in sorted(sizes):
            self._place(buffer_id, sizes[buffer_id])
        self.memory.commands_buffer = commands_buffer
        self.words = patch(words, relocations, self.memory)
        for buffer_id, content in buffers.items():
            if buffer_id != commands_buffer and not isinstance(content, int) and content:
                self.memory.write(self.memory.base(buffer_id), content)
        blob = b"".join(w.to_bytes(WORD_BYTES, "little") for w in self.words)
        self.memory.write(self.memory.base(commands_buffer), blob)
        self.read_only = frozenset(read_only) | {commands_buffer}
        self._synced = False  # no FINI_BO yet: every BO holds CPU writes the NPU must see

    def _place(self, buffer_id: int, size: int) -> None:
        bo = self.device.create_bo(max(size, 1))  # the driver has no empty BOs
        mapping = self.device.map(bo)
        self.bos[buffer_id], self._mappings[buffer_id] = bo, mapping
        self.memory.buffers[buffer_id] = np.frombuffer(mapping, np.uint8, count=size)
        self.memory.bases[buffer_id] = bo.dma_address

    def run_job(self, tasks: Sequence[tuple[int, int]]) -> None:
        """Run one NPU job, `tasks` its (first command word, word count) in order, and wait
        for it; on return its writes are visible in `memory`."""
        base = self.memory.base(self._commands)
        job = RocketJob(
            tuple(RocketTask(base + first * WORD_BYTES, count) for first, count in tasks),
            tuple(self.bos[i].handle for i in sorted(self.bos) if i in self.read_only),
            tuple(bo.handle for bo in self._writable()),
        )
        # the CPU only writes the writable BOs after loading (inputs, CPU ops' results)
        for bo in self.bos.values() if not self._synced else self._writable():
            self.device.fini_bo(bo.handle)
        self._synced = True
        self.device.submit([job])
        for bo in self._writable():  # the job's fence is on its out-BOs: this waits for it
            self.device.prep_bo(bo.handle, self.timeout_ns)

    @property
    def _commands(self) -> int:
        assert self.memory.commands_buffer is not None
        return self.memory.commands_buffer

    def _writable(self) -> list[BufferObject]:
        return [self.bos[i] for i in sorted(self.bos) if i not in self.read_only]

    def close(self) -> None:
        """Unmap the BOs (they are freed with the device's fd)."""
        # numpy views export the mappings' buffers: drop them before closing
        self.memory.buffers.clear()
        for mapping in self._mappings.values():
            mapping.close()
        self._mappings.clear()
