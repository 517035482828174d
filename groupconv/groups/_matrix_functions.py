"""Matrix functions behind :class:`~groupconv.groups.matrix.MatrixLieGroup` (internal):
the guarded principal matrix logarithm (re-exported as ``groupconv.groups.matrix.matrix_log``)
and the check of declared periods."""

from __future__ import annotations

import math

import torch

__all__ = ["matrix_log"]

_SERIES_TERMS = 10  # log(I+X) series terms after square roots bring |X - I| below 0.25


def _sqrt_denman_beavers(A: torch.Tensor, max_iter: int = 60) -> torch.Tensor:
    """Principal square root by the determinant-scaled Denman-Beavers iteration (float64)."""
    n = A.shape[-1]
    Y, Z = A, torch.eye(n, dtype=A.dtype, device=A.device).expand_as(A).clone()
    for _ in range(max_iter):
        detprod = (torch.linalg.det(Y) * torch.linalg.det(Z)).abs()
        mu = detprod.clamp_min(1e-300) ** (-1.0 / (2 * n))
        mu = torch.where(torch.isfinite(mu), mu, torch.ones_like(mu))[..., None, None]
        Zinv, info_z = torch.linalg.inv_ex(Z)
        Yinv, info_y = torch.linalg.inv_ex(Y)
        if bool((info_z != 0).any() | (info_y != 0).any()):
            return torch.full_like(Y, math.nan)
        Yn = 0.5 * (mu * Y + Zinv / mu)
        Zn = 0.5 * (mu * Z + Yinv / mu)
        delta = torch.linalg.matrix_norm(Yn - Y) / torch.linalg.matrix_norm(Yn).clamp_min(1e-300)
        Y, Z = Yn, Zn
        if not bool(torch.isfinite(Y).all()) or float(delta.max()) < 1e-14:
            break
    return Y


def matrix_log(A: torch.Tensor) -> torch.Tensor:
    """Principal matrix logarithm of a batch of real matrices ``(*batch, n, n)``.

    Diagonalisable matrices with well-conditioned eigenvectors use the eigendecomposition
    (one LAPACK call); the others (shears and other near-defective matrices, the cut locus)
    use inverse scaling and squaring: determinant-scaled Denman-Beavers square roots until
    ``|A - I| <= 0.25``, then the series ``log A = 2 artanh((A - I)(A + I)^{-1})``, scaled back
    by ``2**s``. Computed in float64 and returned in the input dtype. Needs host syncs.

    Raises:
        ValueError: when ``A`` has no real principal logarithm (singular, or eigenvalues on the
            closed negative real axis that the iteration cannot resolve).

    Example:
        >>> import torch
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
        >>> torch.allclose(torch.linalg.matrix_exp(matrix_log(A)), A, atol=1e-6)
        True
    """
    if not isinstance(A, torch.Tensor) or A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        shape = tuple(A.shape) if isinstance(A, torch.Tensor) else type(A).__name__
        raise ValueError(f"A must be a batch of square matrices (*batch, n, n), got {shape}")
    if A.numel() == 0:
        return A.clone()
    X = A.to(torch.float64).reshape(-1, A.shape[-1], A.shape[-1])
    n = X.shape[-1]
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    smin = torch.linalg.svdvals(X)[..., -1]
    if bool((smin <= 1e-12 * torch.linalg.matrix_norm(X).clamp_min(1.0)).any()):
        raise ValueError("A must be invertible to have a logarithm, got a (numerically) singular matrix")
    L, ok = _log_eig(X)
    if not bool(ok.all()):
        bad = (~ok).nonzero(as_tuple=True)
        L[bad] = _log_scaling_squaring(X[bad], eye)
    return L.reshape(A.shape).to(A.dtype)


def _log_eig(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``V diag(log lambda) V^{-1}`` and a mask of the matrices where it is trustworthy.

    Trusted when the eigenvectors are well conditioned and the result is real (conjugate
    eigenvalue pairs); defective or near-defective matrices (shears), real negative
    eigenvalues and matrices on the cut locus are left to :func:`_log_scaling_squaring`.
    """
    lam, V = torch.linalg.eig(X)
    Vinv, info = torch.linalg.inv_ex(V)
    L = V @ (torch.log(lam).unsqueeze(-1) * Vinv)
    cond = torch.linalg.matrix_norm(V) * torch.linalg.matrix_norm(Vinv)
    imag = L.imag.abs().amax(dim=(-2, -1))
    real = L.real
    ok = (info == 0) & (cond < 1e3) & (imag <= 1e-12 * (1 + real.abs().amax(dim=(-2, -1))))
    ok = ok & torch.isfinite(real).all(dim=-1).all(dim=-1)
    return torch.where(ok[..., None, None], real, torch.zeros_like(real)), ok


def _log_scaling_squaring(X: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """Inverse scaling and squaring: Denman-Beavers square roots, then an artanh series."""
    s = 0
    while X.numel() and float(torch.linalg.matrix_norm(X - eye).max()) > 0.25:
        if s >= 60:
            raise ValueError("A has no real principal logarithm (square roots did not converge to I)")
        X = _sqrt_denman_beavers(X)
        s += 1
        if not bool(torch.isfinite(X).all()):
            raise ValueError(
                "A has no real principal logarithm (an eigenvalue on the closed negative real axis)"
            )
    Z = torch.linalg.solve(X + eye, X - eye)  # (X+I)^{-1}(X-I): commutes with X
    Z2 = Z @ Z
    term, L = Z, Z.clone()
    for j in range(1, _SERIES_TERMS):
        term = term @ Z2
        L = L + term / (2 * j + 1)
    return L * 2.0 ** (s + 1)


def _check_period(E: torch.Tensor, p: float, i: int) -> None:
    """Refuse ``period[i] = p`` unless ``exp(t E)`` is periodic with smallest period ``p``.

    ``exp(t E)`` is periodic exactly when ``E`` is diagonalisable with purely imaginary
    eigenvalues ``i w_j``; ``exp(p E) = I`` then means every ``p w_j / 2 pi`` is an integer
    ``k_j``, and the smallest period is ``p / gcd(k_j)``.
    """
    n = E.shape[-1]
    eye = torch.eye(n, dtype=torch.float64)
    scale = max(float(E.abs().max()), 1e-300)
    lam = torch.linalg.eigvals(E)
    if float(lam.real.abs().max()) > 1e-9 * scale:
        raise ValueError(
            f"period[{i}] = {p!r} declared on generator E_{i}, but exp(t E_{i}) is not periodic (E_{i} "
            f"has eigenvalues with a real part, {float(lam.real.abs().max()):.3g}: a scaling/boost "
            f"direction); pass period=None for coordinate {i} and a box instead"
        )
    err = float((torch.linalg.matrix_exp(p * E) - eye).abs().max())
    if err > 1e-6:
        w = lam.imag.abs()
        w = w[w > 1e-9 * scale]
        hint = " (exp(t E) is not periodic: E is nilpotent, e.g. a shear or a translation)"
        if w.numel():
            hint = " (exp(t E) is not periodic: incommensurate frequencies or a nilpotent part)"
            base = 2 * math.pi / float(w.min())
            for m in range(1, 13):
                if float((torch.linalg.matrix_exp(m * base * E) - eye).abs().max()) < 1e-6:
                    hint = f"; its smallest period is {m * base:.10g}"
                    break
        raise ValueError(
            f"period[{i}] = {p!r} does not close the one-parameter group of E_{i}: "
            f"max|exp(period * E_{i}) - I| = {err:.3g}{hint}"
        )
    k = torch.round(lam.imag * p / (2 * math.pi)).abs().long().tolist()
    g = 0
    for kj in k:
        g = math.gcd(g, int(kj))
    if g > 1:
        raise ValueError(
            f"period[{i}] = {p!r} is not the smallest period of E_{i}: exp(({p!r} / {g}) E_{i}) = I "
            f"already, so grid(n) would repeat elements; pass period[{i}] = {p / g!r}"
        )
