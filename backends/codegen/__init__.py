"""Code generation: `npu` ops (after the backend passes) -> register command tasks, the
weight blob and the relocations (DESIGN.md, "Register command streams and the container").

    from backends.codegen import generate
    program = generate(model)   # Program: words, tasks, relocations, weight_blob, jobs

- `buffers.py`: the buffer ids relocations name (0 weights, 1 arena, 2 commands, 3+ I/O);
- `emit.py`: task words by register names, the weight blob, the program layout and chaining;
- `packing.py`: the weight layouts; `weights.py`: an op's weight arrays;
- `dpu.py`: the DPU output stage (which registers carry the numerics contract);
- `mac_task.py`: one MAC-array task's registers; `conv.py`, `fully_connected.py`: the ops;
- `dpu_task.py`: a DPU-only task (MRDMA input, no CNA / CORE); `eltwise.py`, `lut.py`: the ops;
- `pool.py`: a PPU task's registers and `npu.pool`; `datamove.py`: concat, slice, pad,
  reshape as PPU copies;
- `tensors.py`: where a tensor lives (layout, buffer, offset); `generate.py`: the driver.
"""

from backends.codegen.buffers import ARENA, COMMANDS, FIRST_IO, WEIGHTS, input_buffer, output_buffer
from backends.codegen.emit import Program, TaskRecord
from backends.codegen.generate import generate

__all__ = [
    "ARENA",
    "COMMANDS",
    "FIRST_IO",
    "WEIGHTS",
    "Program",
    "TaskRecord",
    "generate",
    "input_buffer",
    "output_buffer",
]
