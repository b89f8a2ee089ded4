"""The functional simulator: executes register command streams bit-exactly (DESIGN.md,
"Simulator"). It reads only registers and memory: it imports no code generation.

    memory, words = load(program_words, relocations, buffer_sizes, commands_buffer=2)
    memory.write(memory.base(1) + offset, input_bytes)      # tensors in their layouts
    run_tasks(words, memory, start=first_word_of_a_chain)

- `memory.py`: `Memory` (buffers by id at 32-bit addresses), `load` (relocations);
- `registers.py`: the register file; `executor.py`: walking tasks and chains;
- `cube.py`: feature cubes in memory (NC1HWC2 / planar); `mac.py`: CNA + CORE (input band,
  weights, exact convolution); `dpu.py`: the DPU stages and the write DMA; `dpu_float.py`:
  the DPU's float path (float16 convolutions);
- `dpu_task.py`: DPU-only tasks (MRDMA input; the EW operand, multiplier and LUT);
- `ppu.py`: PPU tasks (PPU | PPU_RDMA: pooling and copies).
"""

from runtime.simulator.executor import TaskTrace, run_tasks
from runtime.simulator.memory import Memory, SimulatorError, load, patch
from runtime.simulator.registers import RegisterFile

__all__ = ["Memory", "RegisterFile", "SimulatorError", "TaskTrace", "load", "patch", "run_tasks"]
