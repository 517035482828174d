"""Fields of signals sampled on regular grids: images, volumes, sequences, group feature maps.

:class:`GridField` (aliases :class:`ImageField`, :class:`VolumeField`, :class:`SequenceField`)
transforms signals ``(B, C, *spatial)`` on R^d; :class:`GroupGridField` transforms signals
``(B, C, N, *spatial)`` on ``H x R^d`` sampled on a grid of ``N`` elements of ``H``.

**Action.** ``(g . f)(u) = f(g^{-1} u)`` where ``g`` acts on R^d affinely,
``u -> A u + t`` (``A = group.matrix(g)``, ``t = group.act(g, 0)``; a homogeneous
``(d+1, d+1)`` matrix is also understood). Sample ``i`` sits at ``u = i - c`` where the
*origin* ``c`` is the grid centre ``(N_k - 1)/2`` (``origin="center"``, default for images and
volumes: rotations and flips about the centre) or the first sample (``origin="start"``,
default for sequences: ``s = 1/2`` dilation is then exactly ``x[..., ::2]`` followed by zeros,
for any length).

**Exact path.** When every sampling point ``A^{-1} u`` lands on an integer index (signed
permutation matrices, odd or even sizes: ``rot90``, flips, transposes; contractions by
``1/2^k`` from the origin) the linear part is an index gather, bit-exact. A signed permutation
permutes the spatial sizes with the axes: a 90-degree rotation of an ``H x W`` image is the
``W x H`` image (``torch.rot90``), exact and invertible on non-square grids and volumes.
Integer translations are :func:`torch.roll`.

**Interpolated path.** Otherwise the linear part uses
:func:`torch.nn.functional.grid_sample` (sampling points computed in float64,
``align_corners=True`` relative to the sample centres) with ``order`` 0 (nearest), 1 (linear)
or 3 (bicubic, 1-D and 2-D only).

**Boundary conditions.** The linear part (rotation, reflection, dilation) pads with zeros:
points whose preimage leaves the grid read 0. The translation part is circular (the grid is a
torus): integer shifts wrap around, fractional shifts interpolate circularly along each axis
with a 1-D kernel of the same order (cubic: Keys ``a = -0.75`` as ``grid_sample``). The
linear part is applied first, then the translation (``g . f = T_t L_A f``). Rigid motions with
signed-permutation linear parts are exact group actions on the torus; with dilations the
zero-padded window is only a partial action near its border.

**Valid region.** :meth:`GridField.valid_mask` is ``None`` when every element acts exactly
(C4, D4 on square grids; translations), otherwise the central disc/ball of radius
``(min(sizes) - 1)/2 - margin`` (1-D: all but ``margin`` samples at each end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._validation import check_tensor
from ..groups.base import Group
from . import _resample as R
from ._elements import candidate_elements, snap_elements
from .fields import Field, check_single_element

__all__ = [
    "GridField",
    "ImageField",
    "VolumeField",
    "SequenceField",
    "GroupGridField",
    "affine_parts",
]

def _to64(g: torch.Tensor) -> torch.Tensor:
    g = g.detach().cpu()
    return g.to(torch.float64) if g.is_floating_point() else g


def affine_parts(group: Group, g: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear part ``A`` ``(d, d)`` and translation ``t`` ``(d,)`` (float64, CPU) of one element."""
    g64 = _to64(g)
    M = group.matrix(g64).to(torch.float64)
    if tuple(M.shape) == (d + 1, d + 1):
        return M[:d, :d], M[:d, d]
    if tuple(M.shape) != (d, d):
        raise ValueError(
            f"{group.name}.matrix(g) must be ({d}, {d}) (or homogeneous ({d + 1}, {d + 1})) "
            f"to act on a {d}-D grid, got shape {tuple(M.shape)}"
        )
    t = group.act(g64, torch.zeros(d, dtype=torch.float64)).to(torch.float64)
    return M, t


class GridField(Field):
    """Signals ``(B, C, *spatial)`` on R^d (d = ``spatial_dims`` = 1, 2 or 3) under ``group``.

    See the module docstring for the action, the exact and interpolated paths and the boundary
    conditions. ``group.space_dim`` must equal ``spatial_dims``.

    Args:
        group: acts on R^d by ``matrix`` (linear groups) or affinely (translations, semidirect
            products).
        spatial_dims: 1 (sequences ``(B, C, L)``), 2 (images) or 3 (volumes).
        order: default interpolation order (0 nearest, 1 linear, 3 cubic in 1-D/2-D).
        origin: ``"center"`` or ``"start"``; ``None`` picks ``"start"`` for 1-D and
            ``"center"`` otherwise.
        margin: the valid disc is ``margin`` samples inside the inscribed disc.

    Example:
        >>> import torch
        >>> from groupconv.groups import SO2
        >>> f = GridField(SO2())
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> g = torch.tensor([torch.pi / 2])
        >>> bool((f.transform(x, g) == torch.rot90(x, 1, dims=(-2, -1))).all()), f.is_exact(g)
        (True, True)
    """

    def __init__(
        self,
        group: Group,
        spatial_dims: int = 2,
        order: int = 1,
        origin: str | None = None,
        margin: float = 1.0,
    ) -> None:
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
        if group.space_dim != spatial_dims:
            raise ValueError(
                f"group {group.name} acts on R^{group.space_dim}, but the field has "
                f"spatial_dims={spatial_dims}"
            )
        if order not in (0, 1, 3):
            raise ValueError(f"order must be 0, 1 or 3, got {order!r}")
        if origin is None:
            origin = "start" if spatial_dims == 1 else "center"
        if origin not in ("center", "start"):
            raise ValueError(f"origin must be 'center' or 'start', got {origin!r}")
        self.group = group
        self.spatial_dims = spatial_dims
        self.order = order
        self.origin = origin
        self.margin = float(margin)

    # -- the action ---------------------------------------------------------------------------
    def affine(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, t)`` of one element (float64, CPU)."""
        return affine_parts(self.group, self._element(g), self.spatial_dims)

    def _apply(
        self, x: torch.Tensor, g: torch.Tensor, order: int | None, contiguous: bool = True
    ) -> torch.Tensor:
        """Spatial transform of ``x`` ``(B, K, *spatial)`` (no layout check)."""
        A, t = self.affine(g)
        order = self.order if order is None else order
        return R.apply_affine(x, A, t.tolist(), self.origin, order, contiguous)

    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        """``g . x`` (see the module docstring); a host sync on ``g`` to pick the exact path."""
        return self._apply(self.check(x), g, order)

    def is_exact(self, g: torch.Tensor, x_shape: Sequence[int] | None = None) -> bool:
        """Exact reindexing (points outside the grid read 0) on ``x_shape``'s grid; without
        ``x_shape`` a square/cubic grid is assumed."""
        A, t = self.affine(g)
        sizes = None if x_shape is None else tuple(x_shape)[-self.spatial_dims :]
        return R.linear_is_exact(A, sizes, self.origin) and R.translation_is_integer(t.tolist())

    def _is_invertibly_exact(self, g: torch.Tensor) -> bool:
        A, t = affine_parts(self.group, g, self.spatial_dims)
        return R.is_signed_permutation(A) and R.translation_is_integer(t.tolist())

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Elements acting by an exact, invertible reindexing on square/cubic grids (identity
        first): rot90/flip-type elements and integer shifts, e.g. the 4 multiples of 90 degrees
        for SO2, all of C4/D4, the 24 cube rotations for SO3. Contractions (exact but lossy) are
        left out."""
        keep, seen = [], set()
        for batch in candidate_elements(self.group, self.spatial_dims):
            for c in batch:
                try:
                    self.group.validate(c, "g")
                    if not self._is_invertibly_exact(c):
                        continue
                    A, t = affine_parts(self.group, c, self.spatial_dims)
                except Exception:  # noqa: BLE001 - not an element after all
                    continue
                key = tuple(torch.round(torch.cat([A.reshape(-1), t])).long().tolist())
                if key not in seen:
                    seen.add(key)
                    keep.append(c)
        out = torch.stack(keep)
        if dtype is not None and out.is_floating_point():
            out = out.to(dtype)
        elif out.is_floating_point():
            out = out.to(torch.get_default_dtype())
        return out.to(device)

    def _all_exact(self, sizes: Sequence[int]) -> bool:
        G, d = self.group, self.spatial_dims
        if G.is_finite and G.order <= 1024:
            return all(R.linear_is_exact(affine_parts(G, g, d)[0], sizes, self.origin)
                       for g in G.elements(dtype=torch.float64))
        gen = torch.Generator().manual_seed(0)
        try:
            sample = G.sample(4, generator=gen, dtype=torch.float64)
        except Exception:  # noqa: BLE001
            return False
        eye = torch.eye(d, dtype=torch.float64)
        return all(float((affine_parts(G, g, d)[0] - eye).abs().max()) <= R.EXACT_TOL for g in sample)

    def valid_mask(
        self,
        x_shape: Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        """``None`` if every element acts exactly on this grid (finite groups of grid symmetries,
        translations); else the central disc/ball (1-D: interval) ``margin`` samples inside,
        shaped ``(1, ..., 1, *spatial)`` to broadcast against ``x``."""
        x_shape = tuple(int(s) for s in x_shape)
        d = self.spatial_dims
        if len(x_shape) < d:
            raise ValueError(f"x_shape must end with {d} spatial sizes, got {x_shape}")
        sizes = x_shape[-d:]
        if self._all_exact(sizes):
            return None
        m = R.disc_mask(sizes, self.margin)
        m = m.reshape((1,) * (len(x_shape) - d) + tuple(sizes))
        return m.to(device=device, dtype=dtype or torch.get_default_dtype())

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        x = check_tensor(x, name)
        d = self.spatial_dims
        if x.dim() != 2 + d:
            layout = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, D, H, W)"}[d]
            raise ValueError(f"{name} must be a {d}-D signal {layout}, got shape {tuple(x.shape)}")
        return x

    def _key(self) -> tuple:
        return (type(self), self.group, self.spatial_dims, self.order, self.origin, self.margin)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridField) and other._key() == self._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.group!r}, spatial_dims={self.spatial_dims}, "
            f"order={self.order}, origin={self.origin!r})"
        )


class ImageField(GridField):
    """:class:`GridField` on images ``(B, C, H, W)``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> ImageField(CyclicGroup(4)).valid_mask((1, 1, 5, 5)) is None
        True
    """

    def __init__(self, group: Group, order: int = 1, origin: str | None = None, margin: float = 1.0):
        super().__init__(group, 2, order, origin, margin)


class VolumeField(GridField):
    """:class:`GridField` on volumes ``(B, C, D, H, W)`` (order 0 or 1)."""

    def __init__(self, group: Group, order: int = 1, origin: str | None = None, margin: float = 1.0):
        super().__init__(group, 3, order, origin, margin)


class SequenceField(GridField):
    """:class:`GridField` on sequences ``(B, C, L)``: integer shifts (exact, circular) and
    dilations ``(g . f)(x) = f(x / s)`` about the first sample (``origin="start"``): ``s = 1/2``
    is exactly ``x[..., ::2]`` padded with zeros, ``s = 2`` upsamples by interpolation (the
    first half of the window is stretched over the whole length). Pass ``origin="center"``
    to dilate about the centre of the window instead.

    Example:
        >>> import torch
        >>> from groupconv.groups.euclidean import Scaling
        >>> f = SequenceField(Scaling(d=1))
        >>> f.transform(torch.arange(6.0).reshape(1, 1, 6), torch.tensor([0.5]))[0, 0].tolist()
        [0.0, 2.0, 4.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, group: Group, order: int = 1, origin: str | None = None, margin: float = 1.0):
        super().__init__(group, 1, order, origin, margin)


class GroupGridField(Field):
    """Signals ``(B, C, N, *spatial)`` on ``H x R^d`` sampled on ``N`` elements ``grid`` of ``H``.

    The acting group ``G`` is ``H`` itself or a semidirect product ``R^d x| H`` (with
    ``split(g) -> (t, h)`` and ``.H``). ``(g . f)(h_i, u) = f(h^{-1} h_i, g^{-1} u)``: space
    transforms as in :class:`GridField`; the group axis is permuted,
    ``new[:, :, i] = old[:, :, j]`` where ``grid[j] == h^{-1} grid[i]`` (matched with
    ``H.distance`` to ``tol`` times the grid spacing). For C_n this is ``torch.roll(x, k, 2)``;
    for D_n the rotations roll both halves by ``k`` and a mirror swaps the halves and reverses
    the rotation index (``i -> -i mod n``).

    When ``h^{-1} grid[i]`` is off the grid and ``H`` is one-dimensional (``algebra_dim == 1``,
    points on the one-parameter group through ``exp``): for compact ``H`` (SO2) with a uniform
    grid covering the circle the axis is interpolated linearly and circularly in the ``log``
    coordinate (approximate); for non-compact ``H`` (Scaling on a log-uniform/dyadic grid)
    linearly inside the grid's range, with zeros for sources outside it (the truncated scale
    axis; an on-lattice shift with zero fill counts as exact). Otherwise ``ValueError``.

    Example:
        >>> import torch
        >>> from groupconv.groups import CyclicGroup
        >>> C4 = CyclicGroup(4)
        >>> f = GroupGridField(C4, C4.elements())
        >>> x = torch.randn(2, 3, 4, 5, 5)
        >>> y = torch.roll(torch.rot90(x, 1, dims=(-2, -1)), 1, dims=2)
        >>> bool((f.transform(x, C4.elements()[1]) == y).all())
        True
    """

    def __init__(
        self,
        group: Group,
        grid: torch.Tensor,
        spatial_dims: int = 2,
        order: int = 1,
        origin: str | None = None,
        margin: float = 1.0,
        tol: float = 1e-4,
    ) -> None:
        self.group = group
        self.H = group.H if hasattr(group, "split") and hasattr(group, "H") else group
        es = tuple(self.H.element_shape)
        grid = check_tensor(grid, "grid")
        if grid.dim() != 1 + len(es) or tuple(grid.shape[1:]) != es or grid.shape[0] < 1:
            raise ValueError(
                f"grid must hold N elements of {self.H.name}, shape (N, {', '.join(map(str, es))}), "
                f"got shape {tuple(grid.shape)}"
            )
        self.grid = self._snap_grid(grid)
        self.spatial = GridField(group, spatial_dims, order, origin, margin)
        self.tol = float(tol)
        N = self.grid.shape[0]
        if N > 1:
            D = self.H.distance(self.grid.unsqueeze(1), self.grid.unsqueeze(0)).to(torch.float64)
            off = D.masked_fill(torch.eye(N, dtype=torch.bool), float("inf"))
            spacing = float(off.min())
            if not spacing > 0:
                raise ValueError("grid must hold N distinct elements, got a repeated element")
        else:
            spacing = 1.0
        self._match_tol = self.tol * spacing

    def _reference(self, n: int) -> torch.Tensor | None:
        """The group's own float64 elements a low-precision grid is snapped to (or None)."""
        H = self.H
        try:
            if H.is_finite and H.order <= 4096:
                return H.elements(dtype=torch.float64)
            return H.grid(n, dtype=torch.float64)
        except Exception:  # noqa: BLE001 - a group without elements()/grid(n)
            return None

    def _snap_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """``grid`` in float64, rows replaced by the group's float64 elements they round to:
        a layer cast to float16 keeps its grid buffer in float16, but the field (and the
        verification kit) must act with the group's exact elements."""
        g64 = _to64(grid)
        ref = self._reference(grid.shape[0])
        if ref is None or not grid.is_floating_point():
            return g64
        return snap_elements(g64, ref, grid.dtype)

    @property
    def n(self) -> int:
        return int(self.grid.shape[0])

    @property
    def spatial_dims(self) -> int:
        return self.spatial.spatial_dims

    # -- the group axis -----------------------------------------------------------------------
    def _h(self, g: torch.Tensor) -> torch.Tensor:
        g64 = _to64(g)
        h = _to64(self.group.split(g64)[1]) if self.H is not self.group else g64
        if g.is_floating_point() and g.dtype != torch.float64:  # an element rounded to g.dtype
            h = snap_elements(h.unsqueeze(0), self.grid, g.dtype)[0]
        return h

    def axis_map(self, g: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``(W, exact)``: ``new[:, :, i] = sum_j W[i, j] old[:, :, j]`` (float64 ``(N, N)``);
        ``exact`` when each row of ``W`` is one-hot or zero."""
        H, G = self.H, self.grid
        h = self._h(self._element(g))
        targets = H.product(H.inverse(h), G).to(torch.float64)
        D = H.distance(targets.unsqueeze(1), G.unsqueeze(0)).to(torch.float64)
        dmin, j = D.min(dim=1)
        matched = dmin <= self._match_tol
        W = torch.zeros(self.n, self.n, dtype=torch.float64)
        W[matched, j[matched]] = 1.0
        if bool(matched.all()):
            return W, True
        return self._interpolate_axis(W, matched, targets)

    def _interpolate_axis(self, W, matched, targets) -> tuple[torch.Tensor, bool]:
        H, G, N, tol = self.H, self.grid, self.n, self.tol

        def fail(why: str) -> ValueError:
            return ValueError(
                f"h^-1 grid is not on the grid of {N} {H.name} elements and the group axis cannot "
                f"be interpolated: {why}"
            )

        if H.algebra_dim != 1:
            raise fail(
                f"{H.name} is not one-dimensional (algebra_dim={H.algebra_dim}); an exact check needs "
                "a grid closed under the tested elements (e.g. SO3().grid(n) with n a multiple of 24 "
                "holds cosets of the cube group)"
            )
        try:
            theta = H.log(G)[:, 0].to(torch.float64)
            phi = H.log(targets)[:, 0].to(torch.float64)
            for pts, lg in ((G, theta), (targets, phi)):
                back = H.exp(lg.unsqueeze(-1))
                if float(H.distance(back.to(torch.float64), pts).max()) > self._match_tol + 1e-9:
                    raise fail("the elements do not lie on the one-parameter group exp(t X)")
        except ValueError:
            raise
        except Exception as err:  # noqa: BLE001
            raise fail(f"{H.name}.exp/log failed ({err})") from err
        exact = True
        rows = (~matched).nonzero().flatten().tolist()
        if H.is_compact:
            step = 2 * math.pi / N
            k = torch.remainder((theta - theta[0]) / step, N)
            kr = torch.round(k)
            if float((k - kr).abs().max()) > tol or sorted(torch.remainder(kr, N).long().tolist()) != list(
                range(N)
            ):
                raise fail("the grid is not uniform over the circle (log angles 2 pi k / N + offset)")
            pos_to_j = torch.empty(N, dtype=torch.long)
            pos_to_j[torch.remainder(kr, N).long()] = torch.arange(N)
            for i in rows:
                u = float(torch.remainder((phi[i] - theta[0]) / step, N))
                lo = math.floor(u)
                a = u - lo
                W[i, pos_to_j[lo % N]] += 1 - a
                W[i, pos_to_j[(lo + 1) % N]] += a
                exact = exact and min(a, 1 - a) <= tol
        else:
            if N < 2:
                raise fail("a one-element grid of a non-compact group has no spacing")
            order = torch.argsort(theta)
            ts = theta[order]
            step = float(ts[1] - ts[0])
            if float(((ts[1:] - ts[:-1]) - step).abs().max()) > tol * abs(step):
                raise fail("the grid is not uniform in the log coordinate")
            for i in rows:
                u = float((phi[i] - ts[0]) / step)
                if u < -tol or u > N - 1 + tol:
                    uf = abs(u - round(u))
                    exact = exact and uf <= tol  # on-lattice zero fill
                    continue  # source outside the truncated axis: zero
                lo = min(max(math.floor(u), 0), N - 2)
                a = min(max(u - lo, 0.0), 1.0)
                W[i, order[lo]] += 1 - a
                W[i, order[lo + 1]] += a
                exact = exact and min(a, 1 - a) <= tol
        if exact:
            W = torch.round(W)
        return W, exact

    # -- the field protocol -------------------------------------------------------------------
    def transform(self, x: torch.Tensor, g: torch.Tensor, *, order: int | None = None) -> torch.Tensor:
        x = self.check(x)
        g = self._element(g)
        W, exact = self.axis_map(g)
        B, C, N = x.shape[:3]
        sp = x.shape[3:]
        y = self.spatial._apply(x.reshape(B, C * N, *sp), g, order, contiguous=False)
        y = y.reshape(B, C, N, *y.shape[2:])
        if exact:
            idx = W.argmax(dim=1)
            keep = W.sum(dim=1) > 0
            shift = int(-idx[0]) % N  # a cyclic roll new[i] = old[i - shift] (C_n): torch.roll
            if bool(keep.all()) and bool((idx == torch.remainder(torch.arange(N) - shift, N)).all()):
                return torch.roll(y, shift, dims=2) if shift else y.contiguous()
            y = y.index_select(2, idx.to(x.device))
            if not bool(keep.all()):
                shape = (1, 1, N) + (1,) * len(sp)
                y = y * keep.to(device=x.device, dtype=y.dtype).reshape(shape)
            return y
        return torch.einsum("ij,bcj...->bci...", W.to(device=x.device, dtype=x.dtype), y)

    def is_exact(self, g: torch.Tensor, x_shape: Sequence[int] | None = None) -> bool:
        """Exact spatial reindexing and an exact group-axis permutation (zero fill allowed)."""
        return self.spatial.is_exact(g, x_shape) and self.axis_map(g)[1]

    def exact_elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The spatially exact elements that also permute the grid (invertibly), identity first."""
        cand = self.spatial.exact_elements(dtype=torch.float64)
        keep = []
        for c in cand:
            try:
                W, exact = self.axis_map(c)
            except ValueError:
                continue
            if exact and bool((W.sum(dim=1) == 1).all()) and bool((W.sum(dim=0) == 1).all()):
                keep.append(c)
        out = torch.stack(keep)
        return out.to(device=device, dtype=dtype or torch.get_default_dtype())

    def valid_mask(
        self,
        x_shape: Sequence[int],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        """The spatial mask of :class:`GridField` (broadcast over the group axis)."""
        return self.spatial.valid_mask(x_shape, device, dtype)

    def check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        x = check_tensor(x, name)
        d = self.spatial_dims
        sp = {1: "L", 2: "H, W", 3: "D, H, W"}[d]
        if x.dim() != 3 + d:
            raise ValueError(
                f"{name} must be a signal on the group grid (B, C, {self.n}, {sp}), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[2] != self.n:
            raise ValueError(
                f"{name} must have {self.n} group elements on axis 2 (B, C, {self.n}, {sp}), "
                f"got {x.shape[2]} (shape {tuple(x.shape)})"
            )
        return x

    def _element(self, g: object, name: str = "g") -> torch.Tensor:
        return check_single_element(self.group, g, name)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GroupGridField)
            and other.spatial == self.spatial
            and other.tol == self.tol
            and other.grid.shape == self.grid.shape
            and bool((other.grid == self.grid).all())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"GroupGridField({self.group!r}, grid=<{self.n} x {self.H.name}>, "
            f"spatial_dims={self.spatial_dims})"
        )
