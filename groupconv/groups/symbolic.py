"""Custom Lie groups from a sympy parameterisation ``g(theta_1, ..., theta_k)``.

Given symbols and a sympy matrix ``g(theta)`` with ``g(0) = I``, the generators
``E_i = dg/dtheta_i (0)`` are derived symbolically, linear independence and closure under the
bracket are checked exactly (rational/symbolic simplification, with a numeric fallback), and a
:class:`SymbolicLieGroup` -- a :class:`~groupconv.groups.matrix.MatrixLieGroup`, so everything
downstream works -- is returned. The parameterisation itself is kept as ``sympy.srepr``
strings and turned into a torch function on demand (:meth:`SymbolicLieGroup.parameterization`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .matrix import MatrixLieGroup

__all__ = ["SymbolicLieGroup", "lie_group_from_sympy"]


def _sympy():
    import sympy

    return sympy


def _derive_generators(symbols: Sequence[Any], matrix: Any) -> tuple[list[Any], Any]:
    """Checked symbolic generators ``[E_i]`` and structure constants of ``matrix(symbols)``."""
    sp = _sympy()
    if not isinstance(matrix, sp.MatrixBase):
        raise TypeError(f"matrix must be a sympy Matrix, got {type(matrix).__name__}")
    if matrix.rows != matrix.cols or matrix.rows == 0:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    symbols = list(symbols)
    if not symbols or not all(isinstance(s, sp.Symbol) for s in symbols):
        raise TypeError(f"symbols must be a non-empty sequence of sympy Symbols, got {symbols!r}")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols must be distinct, got {symbols!r}")
    extra = matrix.free_symbols - set(symbols)
    if extra:
        raise ValueError(f"matrix depends on symbols not listed in symbols: {sorted(map(str, extra))}")
    n = matrix.rows
    at_zero = {s: 0 for s in symbols}
    g0 = sp.simplify(matrix.subs(at_zero) - sp.eye(n))
    if g0 != sp.zeros(n, n):
        raise ValueError(f"matrix must equal the identity at symbols = 0, got g(0) - I = {g0.tolist()}")
    gens = [sp.simplify(matrix.diff(s).subs(at_zero)) for s in symbols]
    flat = sp.Matrix.hstack(*[E.reshape(n * n, 1) for E in gens])
    if flat.rank(simplify=True) < len(gens):
        raise ValueError(
            f"the generators dg/dtheta_i(0) must be linearly independent, got rank "
            f"{flat.rank(simplify=True)} for {len(gens)} symbols: {[E.tolist() for E in gens]}"
        )
    k = len(gens)
    consts = [[[sp.Integer(0)] * k for _ in range(k)] for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            B = sp.simplify(gens[i] * gens[j] - gens[j] * gens[i]).reshape(n * n, 1)
            try:
                sol, params = flat.gauss_jordan_solve(B)
            except ValueError:
                raise ValueError(
                    f"the generators are not closed under the Lie bracket: [E_{i}, E_{j}] = "
                    f"{B.reshape(n, n).tolist()} is not a combination of the generators"
                ) from None
            sol = sol.subs({p: 0 for p in params})
            for m in range(k):
                consts[i][j][m] = sp.simplify(sol[m])
                consts[j][i][m] = -consts[i][j][m]
    return gens, consts


@dataclass(frozen=True)
class SymbolicLieGroup(MatrixLieGroup):
    """A :class:`MatrixLieGroup` derived from a sympy parameterisation ``g(theta)``.

    Extra fields (strings, so equality, hashing and pickling work):
    ``symbol_names`` and ``expression`` (``sympy.srepr`` of the matrix). Build it with
    :meth:`from_parameterization` or :func:`lie_group_from_sympy`.

    Example:
        >>> import math, sympy
        >>> t = sympy.Symbol("theta")
        >>> R = sympy.Matrix([[sympy.cos(t), -sympy.sin(t)], [sympy.sin(t), sympy.cos(t)]])
        >>> G = SymbolicLieGroup.from_parameterization([t], R, period=2 * math.pi, name="SO2")
        >>> G.generator_tensor().tolist()
        [[[0.0, -1.0], [1.0, 0.0]]]
    """

    symbol_names: tuple[str, ...] = ()
    expression: str = ""

    @classmethod
    def from_parameterization(
        cls,
        params: Sequence[Any],
        matrix_expr: Any,
        *,
        compact: bool | None = None,
        period: float | tuple[float | None, ...] | None = None,
        box: tuple[tuple[float, float] | None, ...] | None = None,
        name: str = "SymbolicLieGroup",
    ) -> SymbolicLieGroup:
        """Derive generators of ``matrix_expr(params)`` (sympy) and build the group.

        Raises ``ValueError`` when ``g(0) != I``, the generators are dependent or not closed
        under the bracket, and ``TypeError`` for non-sympy inputs.
        """
        sp = _sympy()
        gens, _ = _derive_generators(params, matrix_expr)
        numeric = [[[float(sp.N(v)) for v in row] for row in E.tolist()] for E in gens]
        return cls(
            torch.tensor(numeric, dtype=torch.float64),
            compact=compact,
            period=period,
            box=box,
            name=name,
            symbol_names=tuple(str(s) for s in params),
            expression=sp.srepr(sp.ImmutableMatrix(matrix_expr)),
        )

    def sympy_matrix(self) -> Any:
        """The parameterisation as a sympy Matrix (re-parsed from :attr:`expression`)."""
        sp = _sympy()
        if not self.expression:
            raise ValueError(f"{self.name} has no stored sympy expression")
        return sp.sympify(self.expression, locals={s: sp.Symbol(s) for s in self.symbol_names})

    def symbolic_generators(self) -> list[Any]:
        """The generators as exact sympy matrices."""
        sp = _sympy()
        symbols = [sp.Symbol(s) for s in self.symbol_names]
        return _derive_generators(symbols, sp.Matrix(self.sympy_matrix()))[0]

    def symbolic_structure_constants(self) -> list[list[list[Any]]]:
        """Exact structure constants ``c[i][j][l]`` (sympy expressions)."""
        sp = _sympy()
        symbols = [sp.Symbol(s) for s in self.symbol_names]
        return _derive_generators(symbols, sp.Matrix(self.sympy_matrix()))[1]

    def parameterization(self, theta: torch.Tensor) -> torch.Tensor:
        """Evaluate ``g(theta)`` for ``theta (*batch, k)`` -> ``(*batch, n, n)`` with torch.

        The torch function is generated with ``sympy.lambdify`` on each call (nothing cached in
        the frozen group); differentiable and on ``theta``'s device/dtype.
        """
        sp = _sympy()
        theta = self._check_algebra(theta, "theta")
        M = sp.Matrix(self.sympy_matrix())
        symbols = [sp.Symbol(s) for s in self.symbol_names]
        fn = sp.lambdify(symbols, list(M), modules="torch")
        values = fn(*theta.unbind(-1))
        batch = theta.shape[:-1]
        entries = [torch.as_tensor(v, dtype=theta.dtype, device=theta.device).expand(batch) for v in values]
        return torch.stack(entries, dim=-1).reshape(*batch, self.n, self.n)

    def __repr__(self) -> str:
        return f"SymbolicLieGroup(name={self.name!r}, symbols={self.symbol_names}, n={self.n})"


def lie_group_from_sympy(
    symbols: Sequence[Any],
    matrix: Any,
    *,
    compact: bool | None = None,
    period: float | tuple[float | None, ...] | None = None,
    box: tuple[tuple[float, float] | None, ...] | None = None,
    name: str = "SymbolicLieGroup",
) -> SymbolicLieGroup:
    """A :class:`SymbolicLieGroup` from sympy ``symbols`` and a matrix ``g(symbols)`` (``g(0) = I``).

    Example:
        >>> import sympy
        >>> a, b = sympy.symbols("a b")
        >>> G = lie_group_from_sympy([a, b], sympy.Matrix([[sympy.exp(a), b], [0, 1]]), name="Aff1")
        >>> G.structure_constants[0, 1].tolist()
        [0.0, 1.0]
    """
    return SymbolicLieGroup.from_parameterization(
        symbols, matrix, compact=compact, period=period, box=box, name=name
    )
