"""The buffer ids relocations name (`backends.container.Relocation.buffer_id`), in one place.
A loader gives each buffer an address and patches `address(buffer_id) + buffer_offset` into
every relocated register word.

    0  WEIGHTS   the weight blob: packed weights, bias and per-channel operand tables
    1  ARENA     the internal arena of plan-memory (`backend.offset` of internal tensors)
    2  COMMANDS  the command blob itself (PC.BASE_ADDRESS chains a task to the next)
    3, 4, ...    the model's input buffers in argument order, then its output buffers in
                 the order the function returns them (plan-memory's "input" / "output")
"""

from __future__ import annotations

WEIGHTS = 0
ARENA = 1
COMMANDS = 2
FIRST_IO = 3


def input_buffer(argument: int) -> int:
    """The buffer of the model input at argument position `argument`."""
    return FIRST_IO + argument


def output_buffer(inputs: int, result: int) -> int:
    """The buffer of the model output at result position `result` (after `inputs` inputs)."""
    return FIRST_IO + inputs + result
