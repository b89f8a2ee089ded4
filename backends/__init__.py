"""Targets (per-chip hardware tables: `backends.targets`, `get_target(name)`), the register
database (`backends.registers`: the register map as data, u64 command-word encode/decode),
and, still to come (the backend issue, see DESIGN.md), code generation from `npu` ops to
register tasks, the container writer/reader and the disassembler."""
