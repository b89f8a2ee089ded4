"""Targets (per-chip hardware tables), the register database, code generation from `npu` ops
to register tasks, the container writer/reader and the disassembler. Nothing here yet: this
package is built by the backend issue (see DESIGN.md)."""
