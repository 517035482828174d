"""A measured cost model that chooses between the FFT and the direct convolution.

A fixed size threshold ("FFT from 128 taps") is wrong in both directions: at batch 1 the kernel
transform (``C_out C_in / groups`` FFTs) is not amortised, while a layer whose kernel spectrum is
cached (continuous-kernel layers in eval) pays only for the input's transform. The model predicts
both routes' seconds from operation counts and per-operation costs measured on a machine:

* direct: ``t_d = a_direct[d] * B * C_out * (C_in / g) * prod(out) * prod(K)`` (multiply-adds of
  ``torch``'s own ``conv{d}d``, one constant per number of spatial dims ``d`` because the
  backends' efficiency differs per dimensionality);
* FFT: ``t_f = a_fft * T * N log2 N + a_mix * B * C_out * (C_in / g) * N_f + t_0``, where
  ``N = prod(n)`` is the padded transform size (5-smooth lengths),
  ``N_f`` the number of complex frequencies (``N / 2`` roughly), ``T = B C_in + B C_out`` real
  transforms, plus ``C_out C_in / g`` kernel transforms unless the spectrum is cached, and
  ``t_0`` a fixed per-call overhead, all times ``fft_factor[d]`` (the multi-dimensional
  transforms are less efficient per ``N log N`` than 1-D ones). (The layout copies scale with
  ``N_f`` like the mixing and are folded into ``a_mix``.)

:data:`DEFAULT_COST_MODEL`'s constants were checked against timings of both routes on this
project's 2-core CPU (torch 2.13, float32, 1 thread, 2026-12-02): on 12 shapes from a 3x3 2-D
kernel to a full-length 1-D kernel, 1-D/2-D/3-D, cached and uncached, every prediction is within
2.5x of the measured time and the predicted faster route is the measured faster one or within
6 % of it (docs/benchmarks.md, "FFT or direct"). On another machine (and on CUDA, where nothing
has been measured yet) run :func:`calibrate` and install its result with :func:`set_cost_model`
(or pass it to :func:`~groupconv.functional.use_fft` as ``cost_model=``).

Threads. The constants are per thread count: the direct ``conv`` and the FFT route do not speed
up alike with more threads, so a model records the ``threads`` it was fitted for. Models are
installed per thread count (``set_cost_model(calibrate(threads=2))`` serves runs with two
threads only) or for every count (a model without ``threads``); :func:`get_cost_model` returns
the one installed for ``torch.get_num_threads()``, else the one for every count, else
:data:`DEFAULT_COST_MODEL` (fitted for 1 thread). ``groupconv bench conv --calibrate`` fits a
model at the run's thread count first and its ``cost-model`` row evaluates that model (the row
always names the model it evaluated).

Example:
    >>> m = DEFAULT_COST_MODEL
    >>> m.prefer_fft((1, 32, 16384), (32, 32, 8192))  # long kernel: FFT
    True
    >>> m.prefer_fft((8, 16, 32, 32), (16, 16, 3, 3))  # 3x3: direct
    False
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["CostModel", "DEFAULT_COST_MODEL", "calibrate", "get_cost_model", "set_cost_model",
           "fast_size"]


def fast_size(n: int) -> int:
    """Smallest 2-3-5-smooth integer ``>= n`` (:func:`~groupconv.functional.next_fast_len`)."""
    from .fftconv import next_fast_len

    return next_fast_len(n)


@dataclass(frozen=True)
class CostModel:
    """Per-operation seconds of the two convolution routes (see the module docstring).

    Attributes:
        a_direct: seconds per multiply-add of the direct ``conv{1,2,3}d``, one per dimensionality.
        a_fft: seconds per ``n log2 n`` unit of one real FFT (forward or inverse).
        a_mix: seconds per complex multiply-add of the per-frequency channel mixing (layout
            copies included).
        t0: fixed seconds per FFT call (planning, allocation, Python).
        fft_factor: multiplier of the FFT estimate per dimensionality (1-D, 2-D, 3-D).
        source: where the constants come from.
        extra: free-form details of the fit (torch version, shapes).
        threads: the CPU thread count the constants were fitted for (``None``: unspecified;
            :func:`set_cost_model` installs such a model for every thread count).
    """

    a_direct: tuple[float, float, float] = (1e-10, 1e-10, 1e-10)
    a_fft: float = 1e-9
    a_mix: float = 1e-9
    t0: float = 5e-5
    fft_factor: tuple[float, float, float] = (1.0, 1.0, 1.0)
    source: str = "unmeasured"
    extra: dict = field(default_factory=dict, compare=False)
    threads: int | None = None

    def direct_seconds(self, x_shape: Sequence[int], kernel_shape: Sequence[int],
                       groups: int = 1, padded_size: Sequence[int] | None = None) -> float:
        """Predicted seconds of the direct route for ``x (B, C_in, *S)`` and the kernel shape."""
        b, ks = int(x_shape[0]), [int(k) for k in kernel_shape[2:]]
        size = list(padded_size) if padded_size is not None else [int(s) for s in x_shape[2:]]
        out = [max(s - k + 1, 0) for s, k in zip(size, ks)]
        macs = b * int(kernel_shape[0]) * int(kernel_shape[1]) * math.prod(out) * math.prod(ks)
        return self.a_direct[len(ks) - 1] * macs

    def fft_seconds(self, x_shape: Sequence[int], kernel_shape: Sequence[int], groups: int = 1,
                    padded_size: Sequence[int] | None = None, spectrum_cached: bool = False) -> float:
        """Predicted seconds of the FFT route (``spectrum_cached``: no kernel transform)."""
        b, c_in = int(x_shape[0]), int(x_shape[1])
        c_out, ci = int(kernel_shape[0]), int(kernel_shape[1])
        size = list(padded_size) if padded_size is not None else [int(s) for s in x_shape[2:]]
        fast = [fast_size(s) for s in size]
        n = math.prod(fast)
        nf = n // fast[-1] * (fast[-1] // 2 + 1)
        transforms = b * (c_in + c_out) + (0 if spectrum_cached else c_out * ci)
        t = self.a_fft * transforms * n * math.log2(max(n, 2))
        t += self.a_mix * b * c_out * ci * nf
        return (t + self.t0) * self.fft_factor[len(fast) - 1]

    def prefer_fft(self, x_shape: Sequence[int], kernel_shape: Sequence[int], groups: int = 1,
                   padded_size: Sequence[int] | None = None, spectrum_cached: bool = False) -> bool:
        """``True`` when the FFT route is predicted to be faster."""
        return (self.fft_seconds(x_shape, kernel_shape, groups, padded_size, spectrum_cached)
                < self.direct_seconds(x_shape, kernel_shape, groups, padded_size))

    def as_dict(self) -> dict:
        """JSON-ready constants."""
        return asdict(self)


#: constants for this project's shared 2-core CPU (torch 2.13 CPU, float32, 1 thread), checked
#: against measured timings of both routes on 12 shapes (docs/benchmarks.md, "FFT or direct").
DEFAULT_COST_MODEL = CostModel(
    a_direct=(3.2e-11, 2.1e-11, 6.9e-11),
    a_fft=5.2e-10,
    a_mix=3.0e-10,
    t0=6.0e-5,
    fft_factor=(1.0, 1.0, 2.6),
    source="checked against 12 measured shapes on the project's 2-core CPU, torch 2.13, "
           "1 thread, 2026-12-02",
    threads=1,
)

#: installed models by thread count; the key ``None`` serves every thread count.
_INSTALLED: dict[int | None, CostModel] = {}


def _check_threads(threads: object) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be None or a positive int, got {threads!r}")


def get_cost_model(threads: int | None = None) -> CostModel:
    """The model ``method="auto"`` uses with ``threads`` CPU threads (default: the current
    ``torch.get_num_threads()``): the one installed for that count by :func:`set_cost_model`,
    else the one installed for every count, else :data:`DEFAULT_COST_MODEL`. Under
    ``torch.compile`` the thread count is not read (dynamo cannot trace it): the model for every
    count serves.

    Example:
        >>> get_cost_model(1) is DEFAULT_COST_MODEL
        True
    """
    _check_threads(threads)
    n = threads
    if n is None and len(_INSTALLED) > (None in _INSTALLED) and not torch.compiler.is_compiling():
        # only when a per-count model exists (dynamo cannot trace torch.get_num_threads: a
        # compiled graph takes the model for every count)
        n = torch.get_num_threads()
    model = _INSTALLED.get(n) if n is not None else None
    return model if model is not None else _INSTALLED.get(None, DEFAULT_COST_MODEL)


def set_cost_model(model: CostModel | None, threads: int | None = None) -> CostModel:
    """Install ``model`` for ``method="auto"``; returns the model that served before.

    The model serves runs with ``threads`` CPU threads, by default ``model.threads`` (set by
    :func:`calibrate`); a model for no particular count serves every count that has none of its
    own. ``None`` (or :data:`DEFAULT_COST_MODEL`, as returned by a first call) removes the model
    installed for ``threads`` (without ``threads``: the one for every count), so the next one in
    line serves again.

    Example:
        >>> old = set_cost_model(CostModel(a_direct=(1.0, 1.0, 1.0)))  # direct always loses
        >>> get_cost_model().a_direct
        (1.0, 1.0, 1.0)
        >>> _ = set_cost_model(CostModel(a_direct=(2.0, 2.0, 2.0), threads=2))
        >>> get_cost_model(2).a_direct, get_cost_model(1).a_direct
        ((2.0, 2.0, 2.0), (1.0, 1.0, 1.0))
        >>> _ = set_cost_model(None, threads=2)
        >>> _ = set_cost_model(old)
        >>> get_cost_model(2) is DEFAULT_COST_MODEL
        True
    """
    if model is not None and not isinstance(model, CostModel):
        raise TypeError(f"model must be a CostModel or None, got {type(model).__name__}")
    _check_threads(threads)
    # the default is never installed: passing it back (the usual restore) removes the slot
    key = threads if threads is not None or model is None else model.threads
    old = get_cost_model(key) if key is not None else _INSTALLED.get(None, DEFAULT_COST_MODEL)
    if model is None or model is DEFAULT_COST_MODEL:
        _INSTALLED.pop(threads, None)
    else:
        _INSTALLED[key] = model
    return old


def _best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls: on a shared machine the minimum is the stable statistic
    (other processes only ever add time), and every constant is measured the same way."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


#: shapes timed by :func:`calibrate`: ``(x_shape, kernel_shape)``, "same" padding.
CALIBRATION_SHAPES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((4, 16, 2048), (16, 16, 63)),
    ((1, 32, 2048), (32, 32, 511)),
    ((8, 16, 1024), (16, 16, 127)),
    ((4, 16, 32, 32), (16, 16, 9, 9)),
    ((2, 16, 32, 32), (16, 16, 17, 17)),
    ((1, 8, 16, 16, 16), (8, 8, 5, 5, 5)),
    ((1, 8, 16, 16, 16), (8, 8, 9, 9, 9)),
)


def _fit_nonnegative(rows: list[list[float]], target: list[float]) -> list[float]:
    """Least squares in relative error (each row divided by its target), negatives dropped."""
    a = torch.tensor(rows, dtype=torch.float64)
    t = torch.tensor(target, dtype=torch.float64)
    a, ones = a / t[:, None], torch.ones_like(t)
    active = list(range(a.shape[1]))
    coef = torch.zeros(a.shape[1], dtype=torch.float64)
    while active:
        sol = torch.linalg.lstsq(a[:, active], ones[:, None]).solution.flatten()
        if bool((sol > 0).all()):
            coef[active] = sol
            break
        active = [j for j, v in zip(active, sol.tolist()) if v > 0]
    return coef.tolist()


def calibrate(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
              repeats: int = 3, threads: int | None = None,
              shapes: Sequence[tuple[Sequence[int], Sequence[int]]] = CALIBRATION_SHAPES) -> CostModel:
    """Fit the :class:`CostModel` constants to timings of both routes on ``device``.

    For every ``(x_shape, kernel_shape)`` in ``shapes`` ("same" padding) the direct route, the
    FFT route and the FFT route with a cached spectrum are timed (fastest of ``repeats`` calls:
    on a shared machine other processes only add time). ``a_direct[d]`` is the geometric mean
    of seconds per multiply-add over the ``d``-dimensional shapes; the FFT constants are a
    non-negative least-squares fit in relative error over the 1-D FFT timings, and
    ``fft_factor[d]`` the geometric mean of measured over predicted FFT time per dimensionality
    (relative to 1-D). A few seconds on a CPU; the default shapes cover 1-D, 2-D and 3-D.

    Example:
        >>> m = calibrate(repeats=1, shapes=[((1, 2, 64), (2, 2, 9)), ((1, 2, 8, 8), (2, 2, 3, 3)),
        ...                                  ((1, 2, 4, 4, 4), (2, 2, 3, 3, 3))])
        >>> all(a > 0 for a in m.a_direct)
        True
    """
    from .fftconv import conv, kernel_spectrum, resolve_padding

    dev = torch.device(device)
    prev = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)

    def timed(fn):
        def run():
            fn()
            sync()
        return _best_time(run, repeats)

    direct: dict[int, list[float]] = {1: [], 2: [], 3: []}
    rows: list[list[float]] = []
    target: list[float] = []
    dims: list[int] = []
    probe = CostModel(a_direct=(1.0, 1.0, 1.0), a_fft=0.0, a_mix=0.0, t0=0.0)
    try:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for xs, ws in shapes:
                x = torch.randn(*xs, generator=g).to(device=dev, dtype=dtype)
                w = torch.randn(*ws, generator=g).to(device=dev, dtype=dtype)
                d = len(ws) - 2
                pads = resolve_padding("same", ws[2:])
                padded = [n + lo + hi for n, (lo, hi) in zip(xs[2:], pads)]
                macs = probe.direct_seconds(xs, ws, 1, padded)
                direct[d].append(timed(lambda x=x, w=w: conv(x, w, padding="same", method="direct")) / macs)
                spec = kernel_spectrum(w, padded)
                for cached in (False, True):
                    sp = spec if cached else None
                    t = timed(lambda x=x, w=w, sp=sp: conv(x, w, padding="same", method="fft", spectrum=sp))
                    feats = []
                    for name in ("a_fft", "a_mix", "t0"):
                        coef = {"a_fft": 0.0, "a_mix": 0.0, "t0": 0.0, name: 1.0}
                        unit = CostModel(a_direct=(0.0, 0.0, 0.0), **coef)
                        feats.append(unit.fft_seconds(xs, ws, 1, padded, cached))
                    rows.append(feats)
                    target.append(t)
                    dims.append(d)
    finally:
        torch.set_num_threads(prev)
    geo = [math.exp(sum(map(math.log, v)) / len(v)) if v else math.nan for v in direct.values()]
    known = [a for a in geo if not math.isnan(a)]
    fill = math.exp(sum(map(math.log, known)) / len(known)) if known else 1e-10
    one_d = [i for i, d in enumerate(dims) if d == 1] or list(range(len(dims)))
    a_fft, a_mix, t0 = _fit_nonnegative([rows[i] for i in one_d], [target[i] for i in one_d])
    factor = []
    for d in (1, 2, 3):  # geometric mean of measured / predicted per dimensionality
        logs = [math.log(target[i] / max(sum(c * f for c, f in zip((a_fft, a_mix, t0), rows[i])), 1e-12))
                for i in range(len(dims)) if dims[i] == d]
        factor.append(math.exp(sum(logs) / len(logs)) if logs else 1.0)
    if 1 in dims:
        factor = [f / factor[0] for f in factor]
    n_threads = int(threads) if threads is not None else prev
    return CostModel(a_direct=tuple(fill if math.isnan(a) else a for a in geo),
                     a_fft=a_fft, a_mix=a_mix, t0=t0, fft_factor=tuple(factor),
                     source=f"calibrate(device={dev}, dtype={dtype}, threads={n_threads})",
                     extra={"torch": torch.__version__, "shapes": [list(map(list, s)) for s in shapes]},
                     threads=n_threads if dev.type == "cpu" else None)
