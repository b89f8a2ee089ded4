"""Performance and memory estimates of a container, without a board (issue 6 items 4 and 5).

- `cycles.py`: the cycle model. Each NPU task's work (convolution shape, kernel, channels,
  dtype, bytes read and written) is read from the task's own register writes, so the model
  describes what the container runs; per task `MaxCycles = max(NPUCycles, DDRCycles)`
  (Vela's roofline, research/anchors.md §2.6); CPU ops from a simple per-op model.
- `report.py`: per op (ID, OpType, ..., FullName) as RKNN's `eval_perf` prints it, with
  totals, the OpType ranking table, per-core workload for a core mask, and JSON.
- `memory.py`: weight / internal tensor / other / total memory as RKNN's `eval_memory`
  prints them, from the container's memory plan.

    from runtime.perf import memory_profile, perf_report
    report = perf_report(container, core_mask="auto")
    print(report.text())
"""

from runtime.perf.cycles import PerfError, TaskCost, task_costs
from runtime.perf.memory import MemoryProfile, memory_profile
from runtime.perf.report import PerfReport, perf_report

__all__ = [
    "MemoryProfile",
    "PerfError",
    "PerfReport",
    "TaskCost",
    "memory_profile",
    "perf_report",
    "task_costs",
]
