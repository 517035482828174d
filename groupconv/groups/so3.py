"""The rotation group SO(3) and its octahedral subgroup (the 24 rotations of the cube).

Elements are rotation matrices, tensors ``(*batch, 3, 3)``, acting on points ``(*batch, 3)``
in tensor axis order (for a volume ``(B, C, D, H, W)`` a point is ``(depth, row, col)``).
Lie-algebra coordinates are rotation vectors ``omega = theta * axis`` (``(*batch, 3)``) with
``hat(omega) = [[0, -w2, w1], [w2, 0, -w0], [-w1, w0, 0]]``; ``exp`` is Rodrigues' formula
and ``log`` returns ``|omega| <= pi``. Both are guarded: Taylor terms near the identity and,
near the cut locus ``theta = pi``, an axis read from the symmetric part of the matrix, so that
round trips hold from ``1e-7`` up to ``pi - 1e-4`` in float32 and float64.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .base import Group

__all__ = [
    "SO3",
    "OctahedralGroup",
    "so3_hat",
    "so3_vee",
    "quaternion_to_matrix",
]

# Super-Fibonacci constants (Alexa, CVPR 2022): phi = sqrt(2) and psi, the real root > 1 of
# psi^4 = psi + 4.
_SF_PHI = math.sqrt(2.0)
_SF_PSI = 1.533751168755204288118041


def so3_hat(omega: torch.Tensor) -> torch.Tensor:
    """The skew-symmetric matrix of rotation vectors ``(*batch, 3)`` -> ``(*batch, 3, 3)``."""
    w0, w1, w2 = omega.unbind(-1)
    z = torch.zeros_like(w0)
    return torch.stack(
        [torch.stack([z, -w2, w1], -1), torch.stack([w2, z, -w0], -1), torch.stack([-w1, w0, z], -1)],
        -2,
    )


def so3_vee(A: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`so3_hat` on the skew part: ``(*batch, 3, 3)`` -> ``(*batch, 3)``."""
    return 0.5 * torch.stack(
        [A[..., 2, 1] - A[..., 1, 2], A[..., 0, 2] - A[..., 2, 0], A[..., 1, 0] - A[..., 0, 1]], -1
    )


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of quaternions ``(w, x, y, z)`` ``(*batch, 4)`` (normalised here).

    Example:
        >>> import torch
        >>> quaternion_to_matrix(torch.tensor([1.0, 0.0, 0.0, 0.0])).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _quaternion_product(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    pw, px, py, pz = p.unbind(-1)
    qw, qx, qy, qz = q.unbind(-1)
    return torch.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        -1,
    )


def _tol(dtype: torch.dtype) -> float:
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-2
    return 1e-6 if dtype == torch.float64 else 1e-4


class _RotationMatrixGroup(Group):
    """Shared maths of groups whose elements are 3x3 rotation matrices."""

    element_shape = (3, 3)
    is_compact = True
    space_dim = 3
    algebra_dim = 3
    embedding_dim = 9

    def identity(
        self,
        batch_shape: Sequence[int] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        eye = torch.eye(3, **self._factory_kwargs(device, dtype))
        return eye.expand(*tuple(batch_shape), 3, 3).clone()

    def product(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g, h = self.check_element(g, "g"), self.check_element(h, "h")
        return g @ h

    def inverse(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g).transpose(-1, -2)

    def matrix(self, g: torch.Tensor) -> torch.Tensor:
        return self.check_element(g)

    def det(self, g: torch.Tensor) -> torch.Tensor:
        g = self.check_element(g)
        return torch.ones_like(g[..., 0, 0])

    def _rodrigues(self, X: torch.Tensor) -> torch.Tensor:
        theta2 = (X * X).sum(-1)
        small = theta2 < 1e-6
        theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
        a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
        half = torch.sin(theta / 2) / theta
        b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720, 2 * half * half)
        K = so3_hat(X)
        eye = torch.eye(3, device=X.device, dtype=X.dtype)
        return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)

    def log(self, g: torch.Tensor) -> torch.Tensor:
        """Rotation vector ``theta * axis`` with ``theta in [0, pi]`` (``(*batch, 3)``)."""
        R = self.check_element(g)
        v = so3_vee(R)  # sin(theta) * axis
        c = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1) / 2).clamp(-1.0, 1.0)
        vv = (v * v).sum(-1)
        nonzero = vv > torch.finfo(R.dtype).tiny
        s = torch.where(nonzero, torch.sqrt(torch.where(nonzero, vv, torch.ones_like(vv))), 0 * vv)
        theta = torch.atan2(s, c)
        # Away from pi: omega = theta / sin(theta) * v, with a Taylor guard at 0.
        t2 = theta * theta
        small = theta < 1e-4
        near_pi = c < -0.5
        safe_s = torch.where(small | near_pi, torch.ones_like(s), s)  # finite in both branches
        ratio = torch.where(small, 1 + t2 / 6 + 7 * t2 * t2 / 360, theta / safe_s)
        omega_v = ratio[..., None] * v
        # Near pi: (R + R^T)/2 - cos(theta) I = (1 - cos(theta)) a a^T; read a off its largest column.
        eye = torch.eye(3, device=R.device, dtype=R.dtype)
        B = 0.5 * (R + R.transpose(-1, -2)) - c[..., None, None] * eye
        j = torch.diagonal(B, dim1=-2, dim2=-1).argmax(-1)
        col = torch.gather(B, -1, j[..., None, None].expand(*B.shape[:-1], 1)).squeeze(-1)
        cn = torch.linalg.vector_norm(col, dim=-1, keepdim=True)
        axis = col / torch.where(near_pi[..., None], cn, torch.ones_like(cn))
        axis = torch.where(((axis * v).sum(-1, keepdim=True) < 0), -axis, axis)
        omega_pi = theta[..., None] * axis
        return torch.where(near_pi[..., None], omega_pi, omega_v)

    def normalized_log(self, g: torch.Tensor) -> torch.Tensor:
        """``log(g) / pi``: rotation vectors in the unit ball (discontinuous at ``theta = pi``)."""
        return self.log(g) / math.pi

    def embedding(self, g: torch.Tensor) -> torch.Tensor:
        """The flattened matrix ``(*batch, 9)`` (continuous everywhere)."""
        g = self.check_element(g)
        return g.flatten(-2)

    def distance(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The geodesic angle of ``g^-1 h`` in ``[0, pi]``."""
        d = self.product(self.inverse(g), h)
        v = so3_vee(d)
        c = (d[..., 0, 0] + d[..., 1, 1] + d[..., 2, 2] - 1) / 2
        return torch.atan2(torch.linalg.vector_norm(v, dim=-1), c)

    def _check_rotation(self, g: torch.Tensor, name: str) -> None:
        tol = _tol(g.dtype)
        eye = torch.eye(3, device=g.device, dtype=g.dtype)
        err = (g.transpose(-1, -2) @ g - eye).abs().amax(dim=(-1, -2))
        if bool((err > 10 * tol).any()):
            raise ValueError(
                f"{name} must hold rotation matrices (R^T R = I), got |R^T R - I| = {float(err.max()):.3g}"
            )
        det = torch.linalg.det(g)
        if bool((det < 0).any()):
            raise ValueError(f"{name} must hold rotations with det +1, got det {float(det.min()):.3g}")


@dataclass(frozen=True)
class SO3(_RotationMatrixGroup):
    """The rotation group SO(3); elements are rotation matrices ``(*batch, 3, 3)``.

    ``exp``/``log`` use rotation vectors (see the module docstring). ``sample`` is Haar
    (normalised Gaussian quaternions). ``grid(n)`` is a deterministic near-uniform set: for
    ``n`` a multiple of 24, ``n / 24`` right cosets of the cube group (the 24 cube rotations
    first), so the cube rotations permute the grid exactly and layers on it can be checked
    exactly on voxel grids; otherwise the super-Fibonacci spiral of unit quaternions,
    left-translated so that the first element is the identity (left translation keeps the
    Haar-uniformity of the spiral).

    Example:
        >>> import torch
        >>> G = SO3()
        >>> w = torch.tensor([0.0, 0.0, torch.pi / 2])
        >>> (G.exp(w).round() + 0.0).tolist()
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        >>> torch.allclose(G.log(G.exp(w)), w)
        True
    """

    name = "SO3"

    dimension = 3
    is_finite = False

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        self._check_rotation(g, name)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        """Rodrigues' formula ``I + sin(t)/t K + (1 - cos t)/t^2 K^2`` (Taylor-guarded at 0)."""
        return self._rodrigues(self._check_algebra(X))

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        q = torch.randn(n, 4, generator=generator, **self._factory_kwargs(device, dtype))
        return quaternion_to_matrix(q)

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        kw = self._factory_kwargs(device, dtype)
        if n % 24 == 0:
            return _cube_coset_grid(n // 24, self._fibonacci).to(device=device, dtype=kw["dtype"])
        return self._fibonacci(n, device).to(kw["dtype"])

    @staticmethod
    def _fibonacci(n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The super-Fibonacci grid of ``n`` rotations, identity first (float64)."""
        s = torch.arange(n, device=device, dtype=torch.float64) + 0.5
        r, R = torch.sqrt(s / n), torch.sqrt(1 - s / n)
        alpha, beta = 2 * math.pi * s / _SF_PHI, 2 * math.pi * s / _SF_PSI
        q = torch.stack(
            [r * torch.sin(alpha), r * torch.cos(alpha), R * torch.sin(beta), R * torch.cos(beta)], -1
        )
        q0_inv = q[0] * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q.dtype, device=q.device)
        q = _quaternion_product(q0_inv.expand_as(q), q)
        q[0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=q.dtype, device=q.device)
        return quaternion_to_matrix(q)


def _cube_coset_grid(m: int, fibonacci) -> torch.Tensor:
    """``24 m`` rotations: ``m`` right cosets ``O r_j`` of the cube group, identity first.

    ``h^{-1} (c r_j) = (h^{-1} c) r_j`` for ``h, c`` in the cube group ``O``, so the cube rotations
    permute this grid exactly (a lifting/group convolution on it is exactly O-equivariant, and
    the verification kit finds exact elements). The ``r_j`` (``r_0 = I``) are chosen by
    farthest-point sampling of the cosets among ``24 m`` super-Fibonacci rotations.
    """
    cube = torch.tensor(_octahedral_matrices(), dtype=torch.float64)  # (24, 3, 3), identity first
    if m == 1:
        return cube
    cand = fibonacci(24 * m)  # (K, 3, 3), identity first
    chosen = [0]
    # coset distance: min_c |c r_j - r|_F, updated as cosets are chosen
    dist = (cube[:, None] @ cand[0][None, None] - cand[None]).flatten(-2).norm(dim=-1).amin(0)
    for _ in range(1, m):
        j = int(dist.argmax())
        chosen.append(j)
        dj = (cube[:, None] @ cand[j][None, None] - cand[None]).flatten(-2).norm(dim=-1).amin(0)
        dist = torch.minimum(dist, dj)
    reps = cand[chosen]  # (m, 3, 3)
    return (cube[None] @ reps[:, None]).reshape(24 * m, 3, 3)


def _octahedral_matrices() -> list[list[list[int]]]:
    """The 24 signed permutation matrices of det +1: permutations in lexicographic order, and
    for each the sign patterns in the order (+++), (++-), ..., identity first."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            M = [[0] * 3 for _ in range(3)]
            for i in range(3):
                M[i][perm[i]] = signs[i]
            parity = sum(perm[i] > perm[j] for i in range(3) for j in range(i + 1, 3)) % 2
            if signs[0] * signs[1] * signs[2] * (-1) ** parity == 1:
                out.append(M)
    return out


@dataclass(frozen=True)
class OctahedralGroup(_RotationMatrixGroup):
    """The octahedral group O (order 24): rotations of the cube, a finite subgroup of SO(3).

    Elements are SO(3) matrices ``(*batch, 3, 3)`` with entries in ``{-1, 0, 1}`` (signed
    permutation matrices of det +1), so they act exactly on voxel grids by index permutation.
    ``elements()`` lists them by permutation (lexicographic) and then sign pattern, identity
    first; ``index`` inverts that. ``log`` returns so(3) rotation vectors; ``exp`` accepts only
    rotation vectors of group elements and returns exact (rounded) matrices.
    ``grid(n)`` supports ``n = 24`` (all elements) and ``n = 1`` (the identity).

    Example:
        >>> import torch
        >>> O = OctahedralGroup()
        >>> O.order, O.index(O.elements()).tolist() == list(range(24))
        (24, True)
    """

    name = "OctahedralGroup"

    dimension = 0
    is_finite = True

    @property
    def order(self) -> int:
        return 24

    def elements(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        return torch.tensor(_octahedral_matrices(), **self._factory_kwargs(device, dtype))

    def _scores(self, g: torch.Tensor) -> torch.Tensor:
        E = self.elements(device=g.device, dtype=g.dtype)
        return torch.einsum("...ij,kij->...k", g, E)  # Frobenius products, 3 for a match

    def _check_membership(self, g: torch.Tensor, name: str) -> None:
        self._check_rotation(g, name)
        best = self._scores(g).amax(-1)
        if bool((best < 3 - 100 * _tol(g.dtype)).any()):
            raise ValueError(
                f"{name} must hold octahedral rotations (signed permutation matrices), got a "
                f"rotation at Frobenius score {float(best.min()):.4g} (3 for a member)"
            )

    def index(self, g: torch.Tensor) -> torch.Tensor:
        g = self.validate(g)
        return self._scores(g).argmax(-1)

    def exp(self, X: torch.Tensor) -> torch.Tensor:
        g = self._rodrigues(self._check_algebra(X))
        return torch.round(self.validate(g, "X")) + 0.0

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        k = torch.randint(24, (n,), generator=generator, device=device)
        return self.elements(device=device, dtype=dtype)[k]

    def grid(
        self,
        n: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        n = self._check_n(n)
        if n == 1:
            return self.identity((1,), device=device, dtype=dtype)
        if n != 24:
            raise ValueError(
                f"n must be 24 (all elements) or 1 (identity) for OctahedralGroup.grid, got n={n}"
            )
        return self.elements(device=device, dtype=dtype)
