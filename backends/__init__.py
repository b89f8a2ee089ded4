"""Targets (per-chip hardware tables: `backends.targets`, `get_target(name)`), and, still to
come (the backend issue, see DESIGN.md), the register database, code generation from `npu`
ops to register tasks, the container writer/reader and the disassembler."""
