"""Conv and ConvTranspose (ONNX opset 21) for 1-D, 2-D and 3-D spatial inputs.

Conv is lowered to BLAS: the padded input is viewed as windows with `as_strided`, copied once
into an im2col matrix of shape (C*K, P) and multiplied by the (M, C*K) weight matrix, batched
over groups. 1x1 convolutions skip im2col (a strided view of the input already is the matrix).
Depthwise convolutions (one input channel per group) would waste BLAS on a (1, K) weight row
per group and waste time on a strided im2col, so they split the padded input into stride-phase
planes (`PhaseLayout`) where every tap is one contiguous slice, copy those slices into small
per-channel blocks and reduce each over its K taps with one batched matmul.

ConvTranspose is the adjoint: one GEMM gives every (output channel, tap) contribution of every
input pixel, and col2im scatter-adds them tap by tap into the output.

The padding and phase-plane helpers here are shared with `pooling`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runtime.kernels.registry import KernelError, kernel

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def spatial_ints(name: str, values: Sequence[int] | None, n: int, default: int) -> tuple[int, ...]:
    """An attribute with one int per spatial axis, or `default` on every axis when absent."""
    if values is None or len(values) == 0:
        return (default,) * n
    if len(values) != n:
        raise KernelError(f"{name} has {len(values)} values, expected {n} (one per spatial axis)")
    return tuple(int(v) for v in values)


def check_auto_pad(auto_pad: str | bytes) -> str:
    mode = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if mode not in AUTO_PADS:
        raise KernelError(f"auto_pad={mode!r} is not supported (expected one of {AUTO_PADS})")
    return mode


def resolve_padding(
    auto_pad: str,
    in_sizes: Sequence[int],
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int] | None,
    *,
    crop_same: bool = False,
) -> tuple[list[int], list[int], list[int]]:
    """(pads at the start, pads at the end, output sizes) of a sliding-window op, floor mode.

    SAME_* padding totals below zero (kernel smaller than stride) are clamped to 0 for Conv;
    pooling (`crop_same`) keeps them as the spec formula gives them, i.e. crops the input.
    """
    nd = len(in_sizes)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel_sizes, dilations, strict=True)]
    mode = check_auto_pad(auto_pad)
    if mode == "NOTSET":
        p = spatial_ints("pads", pads, 2 * nd, 0)
        begin, end = list(p[:nd]), list(p[nd:])
        if min(p) < 0:
            raise KernelError(f"negative pads {list(p)} are not supported")
    elif mode == "VALID":
        begin, end = [0] * nd, [0] * nd
    else:
        begin, end = [], []
        for size, span, s in zip(in_sizes, spans, strides, strict=True):
            total = (-(-size // s) - 1) * s + span - size
            if not crop_same:
                total = max(0, total)
            # the odd pixel goes to the end for SAME_UPPER and to the start for SAME_LOWER;
            # int() truncates toward zero like onnxruntime when the total is negative
            head = int(total / 2) if mode == "SAME_UPPER" else int((total + 1) / 2)
            begin.append(head)
            end.append(total - head)
    out_sizes = [
        (size + b + e - span) // s + 1
        for size, b, e, span, s in zip(in_sizes, begin, end, spans, strides, strict=True)
    ]
    if min(out_sizes) < 1:
        raise KernelError(f"window larger than padded input: output spatial shape {out_sizes}")
    return begin, end, out_sizes


def pad_spatial(
    x: np.ndarray, begin: Sequence[int], end: Sequence[int], value: float = 0.0
) -> np.ndarray:
    """`x` with its trailing spatial axes padded by a constant, or cropped where a pad is
    negative (no copy when nothing is padded)."""
    lead = x.ndim - len(begin)
    if min(begin, default=0) < 0 or min(end, default=0) < 0:
        crop = tuple(
            slice(max(0, -b), n - max(0, -e))
            for b, e, n in zip(begin, end, x.shape[lead:], strict=True)
        )
        x = x[(Ellipsis, *crop)]
        begin, end = [max(0, b) for b in begin], [max(0, e) for e in end]
    if not any(begin) and not any(end):
        return x
    shape = x.shape[:lead] + tuple(
        n + b + e for n, b, e in zip(x.shape[lead:], begin, end, strict=True)
    )
    # np.zeros is calloc-backed, cheaper than np.full when the pad value is 0
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    inner = tuple(slice(b, b + n) for b, n in zip(begin, x.shape[lead:], strict=True))
    out[(Ellipsis, *inner)] = x
    return out


def window_view(
    xp: np.ndarray,
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_sizes: Sequence[int],
) -> np.ndarray:
    """Read-only view (N, C, *kernel, *out) of `xp` (N, C, *spatial): every window at once."""
    nd = len(kernel_sizes)
    sp_strides = xp.strides[-nd:]
    shape = xp.shape[:-nd] + tuple(kernel_sizes) + tuple(out_sizes)
    view_strides = (
        xp.strides[:-nd]
        + tuple(st * d for st, d in zip(sp_strides, dilations, strict=True))
        + tuple(st * s for st, s in zip(sp_strides, strides, strict=True))
    )
    return np.lib.stride_tricks.as_strided(xp, shape, view_strides, writeable=False)


def _compute_dtype(x: np.ndarray) -> np.dtype:
    if x.dtype.kind != "f":
        raise KernelError(f"dtype {x.dtype} is not supported (float types only)")
    # numpy has no fast float16 GEMM, so half precision is computed in float32
    return np.dtype(np.float32) if x.dtype.itemsize < 4 else x.dtype


def _conv_geometry(
    x: np.ndarray, w: np.ndarray, group: int, kernel_shape: Sequence[int] | None
) -> tuple[int, int, int]:
    """(N, C, M) after checking that x, w, group and kernel_shape agree."""
    if x.ndim < 3 or w.ndim != x.ndim:
        raise KernelError(f"input rank {x.ndim} and weight rank {w.ndim} do not match")
    n, c, m = x.shape[0], x.shape[1], w.shape[0]
    if group < 1 or c != w.shape[1] * group or m % group:
        raise KernelError(f"group={group} does not fit input channels {c}, weight {w.shape}")
    if kernel_shape and tuple(kernel_shape) != w.shape[2:]:
        raise KernelError(f"kernel_shape {list(kernel_shape)} != weight shape {w.shape[2:]}")
    return n, c, m


@kernel("Conv")
def conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    _, c, _ = _conv_geometry(x, w, group, kernel_shape)
    nd = x.ndim - 2
    ksizes = w.shape[2:]
    st = spatial_ints("strides", strides, nd, 1)
    dil = spatial_ints("dilations", dilations, nd, 1)
    begin, end, out_sizes = resolve_padding(auto_pad, x.shape[2:], ksizes, st, dil, pads)
    dtype = _compute_dtype(x)
    xc, wc = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    if group > 1 and group == c:
        y = _depthwise(xc, wc, begin, st, dil, out_sizes)
    else:
        y = _grouped_gemm(pad_spatial(xc, begin, end), wc, group, st, dil, out_sizes)
    return _add_bias(y, b, x.dtype)


def _add_bias(y: np.ndarray, b: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """y + b per channel (axis 1), contiguous, in `dtype`; reuses y when it is contiguous."""
    if b is not None:
        if b.shape != (y.shape[1],):
            raise KernelError(f"bias of shape {b.shape} for {y.shape[1]} output channels")
        bias = b.astype(y.dtype, copy=False).reshape((-1,) + (1,) * (y.ndim - 2))
        y = np.add(y, bias, out=y) if y.flags.c_contiguous else y + bias
    return np.ascontiguousarray(y.astype(dtype, copy=False))


def _grouped_gemm(
    xp: np.ndarray,
    w: np.ndarray,
    group: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_sizes: Sequence[int],
) -> np.ndarray:
    n, c = xp.shape[:2]
    m = w.shape[0]
    ksizes = w.shape[2:]
    p = int(np.prod(out_sizes))
    if all(k == 1 for k in ksizes):
        index = tuple(slice(0, s * (o - 1) + 1, s) for s, o in zip(strides, out_sizes, strict=True))
        # reshape copies only when strides > 1 made the view non-contiguous
        cols = xp[(Ellipsis, *index)].reshape(n, group, c // group, p)
    else:
        windows = window_view(xp, ksizes, strides, dilations, out_sizes)
        cols = np.ascontiguousarray(windows).reshape(n, group, -1, p)
    if group == 1:
        y = np.matmul(w.reshape(m, -1), cols[:, 0])
    else:
        y = np.matmul(w.reshape(group, m // group, -1), cols)
    return y.reshape(n, m, *out_sizes)


@dataclass(frozen=True)
class PhaseLayout:
    """Where each kernel tap reads in the stride-phase planes of a padded input.

    Phase r of axis i holds padded positions s*q + r (q < Q). Output position o of tap t reads
    phase (t*d) % s at plane position o + (t*d) // s, so with an output laid out like a plane
    (Q wide, the excess cropped later), one tap is one contiguous slice across all (image,
    channel) rows: long vector ops instead of short strided rows.
    """

    q_sizes: tuple[int, ...]  # plane shape
    q_strides: tuple[int, ...]  # element strides of the plane axes
    taps: tuple[tuple[int, int], ...]  # per tap in row-major order: (phase, flat offset)

    @property
    def plane(self) -> int:
        return int(np.prod(self.q_sizes))

    @property
    def tail(self) -> int:
        """Elements a tap slice can run past the last row: the largest tap offset."""
        return max(offset for _, offset in self.taps)


def phase_layout(
    ksizes: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_sizes: Sequence[int],
) -> PhaseLayout:
    q_sizes = tuple(
        o + (k - 1) * d // s
        for o, k, s, d in zip(out_sizes, ksizes, strides, dilations, strict=True)
    )
    q_strides = tuple(int(np.prod(q_sizes[i + 1 :])) for i in range(len(q_sizes)))
    taps = []
    for tap in itertools.product(*(range(k) for k in ksizes)):
        phase, offset = 0, 0
        for t, d, s, qs in zip(tap, dilations, strides, q_strides, strict=True):
            phase = phase * s + t * d % s
            offset += t * d // s * qs
        taps.append((phase, offset))
    return PhaseLayout(q_sizes, q_strides, tuple(taps))


def phase_planes(
    x: np.ndarray,
    begin: Sequence[int],
    layout: PhaseLayout,
    strides: Sequence[int],
    fill: float = 0.0,
) -> np.ndarray:
    """x (N, C, *spatial) padded by `fill` and split into its stride phases, flattened per
    phase: (S, N*C*plane + tail), phases in row-major order. Negative `begin` crops."""
    n, c = x.shape[:2]
    rows, spatial = n * c, x.shape[2:]
    # zeros come cheap from calloc; any other fill is written only where no data goes
    shape = (int(np.prod(strides)), rows * layout.plane + layout.tail)
    flat = np.zeros(shape, x.dtype) if fill == 0 else np.empty(shape, x.dtype)
    planes = flat[:, : rows * layout.plane].reshape(-1, rows, *layout.q_sizes)
    xr = x.reshape(rows, *spatial)
    for index, phase in enumerate(itertools.product(*(range(s) for s in strides))):
        src, dst = [], []
        for r, s, b, size, q in zip(phase, strides, begin, spatial, layout.q_sizes, strict=True):
            q0 = max(0, -((r - b) // s))  # first plane position inside the unpadded input
            i0 = s * q0 + r - b
            count = max(0, min(q - q0, -(-(size - i0) // s)))
            src.append(slice(i0, i0 + s * (count - 1) + 1, s))
            dst.append(slice(q0, q0 + count))
        if all(d.stop > d.start for d in dst):
            planes[(index, slice(None), *dst)] = xr[(slice(None), *src)]
        if fill != 0:
            _fill_outside(planes[index], dst, fill)
    if fill != 0:
        flat[:, rows * layout.plane :] = fill
    return flat


def _fill_outside(plane: np.ndarray, box: Sequence[slice], fill: float) -> None:
    """Set every element of plane (rows, *Q) outside the spatial `box` to `fill`."""
    for axis, inside in enumerate(box):
        prefix = (slice(None),) * (axis + 1)
        plane[(*prefix, slice(0, inside.start))] = fill
        plane[(*prefix, slice(inside.stop, None))] = fill


def crop_planes(
    wide: np.ndarray, lead: Sequence[int], layout: PhaseLayout, out_sizes: Sequence[int]
) -> np.ndarray:
    """View of a plane-laid-out result (rows * plane elements) as (*lead, *out_sizes)."""
    shaped = wide.reshape(*lead, *layout.q_sizes)
    return shaped[(Ellipsis, *(slice(0, o) for o in out_sizes))]


# Rows per depthwise step are chosen so that one step's im2col block holds about this many
# elements: big enough to amortise the per-call overhead, small enough to stay in cache.
_DEPTHWISE_STEP = 1 << 18


def _depthwise(
    x: np.ndarray,
    w: np.ndarray,
    begin: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_sizes: Sequence[int],
) -> np.ndarray:
    """Conv with one input channel per group (channel multiplier M/C), as one small GEMM per
    (image, channel) row over that row's taps, built from contiguous slices of phase planes.
    """
    n, c = x.shape[:2]
    layout = phase_layout(w.shape[2:], strides, dilations, out_sizes)
    flat = phase_planes(x, begin, layout, strides)
    rows, plane, k = n * c, layout.plane, len(layout.taps)
    mult = w.shape[0] // c
    weights = w.reshape(1, c, mult, k)
    y = np.empty((n, c, mult, plane), x.dtype)
    step = max(1, _DEPTHWISE_STEP // (plane * k))
    cols = np.empty((min(step, c), k, plane), x.dtype)
    r0 = 0
    while r0 < rows:
        r1 = min(r0 + step, (r0 // c + 1) * c)  # a step never spans two images
        block = cols[: r1 - r0]
        for i, (phase, offset) in enumerate(layout.taps):
            block[:, i] = flat[phase, r0 * plane + offset : r1 * plane + offset].reshape(-1, plane)
        img, c0 = divmod(r0, c)
        np.matmul(weights[0, c0 : c0 + r1 - r0], block, out=y[img, c0 : c0 + r1 - r0])
        r0 = r1
    return crop_planes(y, (n, c * mult), layout, out_sizes)


def _transpose_pads(
    auto_pad: str,
    natural: Sequence[int],
    in_sizes: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] | None,
    output_shape: Sequence[int] | None,
) -> tuple[list[int], list[int]]:
    """(pads at the start, output sizes) of ConvTranspose, per the opset-11+ rules."""
    nd = len(natural)
    mode = check_auto_pad(auto_pad)
    if output_shape:
        out = [int(v) for v in output_shape[-nd:]]
        if len(out) != nd:
            raise KernelError(f"output_shape {list(output_shape)} has too few spatial sizes")
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        out = [i * s for i, s in zip(in_sizes, strides, strict=True)]
    elif mode == "VALID":
        return [0] * nd, list(natural)
    else:
        p = spatial_ints("pads", pads, 2 * nd, 0)
        return list(p[:nd]), [
            nat - b - e for nat, b, e in zip(natural, p[:nd], p[nd:], strict=True)
        ]
    # a negative total (output_shape beyond the natural size) extends the output with zeros
    totals = [nat - o for nat, o in zip(natural, out, strict=True)]
    if mode == "SAME_UPPER":
        return [t // 2 for t in totals], out
    return [t - t // 2 for t in totals], out


@kernel("ConvTranspose")
def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None,
    output_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    if x.ndim < 3 or w.ndim != x.ndim:
        raise KernelError(f"input rank {x.ndim} and weight rank {w.ndim} do not match")
    n, c = x.shape[:2]
    if group < 1 or c % group or w.shape[0] != c:
        raise KernelError(f"group={group} does not fit input channels {c}, weight {w.shape}")
    if kernel_shape and tuple(kernel_shape) != w.shape[2:]:
        raise KernelError(f"kernel_shape {list(kernel_shape)} != weight shape {w.shape[2:]}")
    nd = x.ndim - 2
    in_sizes, ksizes = x.shape[2:], w.shape[2:]
    m = w.shape[1] * group
    st = spatial_ints("strides", strides, nd, 1)
    dil = spatial_ints("dilations", dilations, nd, 1)
    opad = spatial_ints("output_padding", output_padding, nd, 0)
    spans = [(k - 1) * d + 1 for k, d in zip(ksizes, dil, strict=True)]
    natural = [
        s * (i - 1) + op + sp for s, i, op, sp in zip(st, in_sizes, opad, spans, strict=True)
    ]
    begin, out_sizes = _transpose_pads(auto_pad, natural, in_sizes, st, pads, output_shape)
    if min(out_sizes) < 1:
        raise KernelError(f"output spatial shape {out_sizes} is empty")

    dtype = _compute_dtype(x)
    p = int(np.prod(in_sizes))
    xg = x.astype(dtype, copy=False).reshape(n, group, c // group, p)
    wg = w.astype(dtype, copy=False).reshape(group, c // group, -1)
    # cols[n, g, (m_in_group, tap), pixel]: each input pixel's contribution to every tap
    cols = np.matmul(wg.transpose(0, 2, 1), xg).reshape(n, m, *ksizes, *in_sizes)
    y = _col2im(cols, nd, st, dil, begin, out_sizes)
    return _add_bias(y, b, x.dtype)


def _col2im(
    cols: np.ndarray,
    nd: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    begin: Sequence[int],
    out_sizes: Sequence[int],
) -> np.ndarray:
    """Scatter-add cols (N, M, *kernel, *in) into the cropped output (N, M, *out)."""
    ksizes, in_sizes = cols.shape[2 : 2 + nd], cols.shape[2 + nd :]
    full = [
        s * (i - 1) + (k - 1) * d + 1
        for s, i, k, d in zip(strides, in_sizes, ksizes, dilations, strict=True)
    ]
    # negative start pads and output_shape/output_padding beyond the scattered extent widen the
    # buffer, so that the crop below is always in range and the extension stays zero
    lead = [max(0, -bg) for bg in begin]
    size = [ld + max(f, bg + o) for ld, f, bg, o in zip(lead, full, begin, out_sizes, strict=True)]
    # when the taps tile the output exactly (e.g. 2x2 kernel, stride 2) each element is written
    # once: no zero fill, and assignment instead of accumulation
    tiled = list(strides) == list(ksizes) and size == full and all(d == 1 for d in dilations)
    buf = (np.empty if tiled else np.zeros)(cols.shape[:2] + tuple(size), cols.dtype)
    for tap in itertools.product(*(range(k) for k in ksizes)):
        index = tuple(
            slice(ld + t * d, ld + t * d + s * (i - 1) + 1, s)
            for ld, t, d, s, i in zip(lead, tap, dilations, strides, in_sizes, strict=True)
        )
        if tiled:
            buf[(Ellipsis, *index)] = cols[(slice(None), slice(None), *tap)]
        else:
            buf[(Ellipsis, *index)] += cols[(slice(None), slice(None), *tap)]
    crop = tuple(
        slice(ld + bg, ld + bg + o) for ld, bg, o in zip(lead, begin, out_sizes, strict=True)
    )
    return np.ascontiguousarray(buf[(Ellipsis, *crop)])
