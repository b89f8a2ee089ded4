"""`inspect MODEL.rknn [--disasm]`: a container's header, inputs/outputs, op table, memory
plan and, with --disasm, every task's register writes by block, register and field."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backends.container import COMMANDS, Container, read_container
from backends.registers import decode

WORD_BYTES = 8


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "inspect",
        help="print what a container holds",
        description="Print the header, inputs/outputs, op table (ONNX names, NPU/CPU, task "
        "ranges) and memory plan of a container built by `build`.",
    )
    parser.add_argument("container", type=Path, help="the .rknn file")
    parser.add_argument("--disasm", action="store_true", help="decode every task's words")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    container = read_container(args.container)
    if args.json:
        print(json.dumps(container.metadata, indent=2, sort_keys=True))
        return 0
    print("\n".join(describe(container, args.container.name)))
    if args.disasm:
        print("\n".join(disassemble(container)))
    return 0


def describe(container: Container, name: str) -> list[str]:
    meta = container.metadata
    tool = meta.get("tool", {})
    lines = [f"{name}: target {container.target}, built by {tool.get('name', '?')} "
             f"{tool.get('version', '?')}", "sections:"]  # fmt: skip
    lines += [f"  {k:<12} {len(v):>10} bytes" for k, v in sorted(container.sections.items())]
    lines.append("inputs:")
    lines += [f"  {t['name']}  {t['shape']}  {t['dtype']}" for t in meta.get("inputs", [])]
    lines.append("outputs:")
    lines += [f"  {t['name']}  {t['shape']}  {t['dtype']}" for t in meta.get("outputs", [])]
    lines.append("ops:")
    lines.append(f"  {'#':>4}  {'target':<6} {'tasks':<9} {'op':<24} node -> outputs")
    for op in meta.get("ops", []):
        tasks = op.get("tasks")
        span = f"{tasks[0]}+{tasks[1]}" if tasks else "-"
        reason = f"   ({op['reason']})" if op.get("reason") else ""
        lines.append(f"  {op['index']:>4}  {op['target']:<6} {span:<9} {op['op']:<24} "
                     f"{op['node'] or '-'} -> {', '.join(op['outputs'])}{reason}")  # fmt: skip
    memory = meta.get("memory", {})
    lines.append(f"memory: weights {memory.get('weight_bytes', 0)} B, internal "
                 f"{memory.get('internal_bytes', 0)} B, commands "
                 f"{memory.get('command_bytes', 0)} B")  # fmt: skip
    return lines


def disassemble(container: Container) -> list[str]:
    """Every task's words decoded, under a line naming the task and its op."""
    blob = container.sections.get(COMMANDS, b"")
    words = [int.from_bytes(blob[i : i + WORD_BYTES], "little")
             for i in range(0, len(blob) - WORD_BYTES + 1, WORD_BYTES)]  # fmt: skip
    ops = {op["index"]: op for op in container.metadata.get("ops", [])}
    lines = ["tasks:"]
    for number, (op_index, first, count) in enumerate(container.metadata.get("tasks", [])):
        op = ops.get(op_index, {})
        lines.append(f"task {number}: {op.get('op', '?')} {op.get('node') or '-'} "
                     f"(words {first}..{first + count - 1})")  # fmt: skip
        lines += [_word_line(i, words[i]) for i in range(first, min(first + count, len(words)))]
    return lines


def _word_line(index: int, word: int) -> str:
    try:
        block, register, fields = decode(word)
    except ValueError as exc:
        return f"  {index:>6}  {word:016x}  ? {exc}"
    shown = ", ".join(f"{k}={v}" for k, v in fields.items() if v and not k.startswith("RESERVED"))
    return f"  {index:>6}  {word:016x}  {block}.{register}  {shown}"
