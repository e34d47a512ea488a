"""Long convolution by FFT: ``O(L log L)`` instead of ``O(L^2)``.

The FFT computes a *circular* convolution. Zero-padding both signals to at least ``2L`` turns
it into the linear one: without the padding, the taps that run off the end would wrap around
and position ``t`` would receive input from positions near ``L - 1``, i.e. from its future.

Exported graphs (``torch.export``, ONNX) pad to a power of two instead of the smallest
5-smooth size: ONNX Runtime's CPU ``DFT`` kernel is a radix-2 FFT only for powers of two and
otherwise a naive ``O(n^2)`` DFT whose float32 twiddle angles ``2*pi*j*k/n`` lose precision as
``j*k`` grows (measured: 6e-5 error at ``L = 2000`` against 2e-7 with the power of two).
"""

from __future__ import annotations

import functools

import torch

__all__ = ["fft_conv", "fast_fft_size", "fft_size"]


@functools.lru_cache(maxsize=256)
def fast_fft_size(minimum: int) -> int:
    """Smallest 5-smooth integer (``2^a 3^b 5^c``) ``>= minimum``: sizes pocketFFT/cuFFT do fast."""
    best = 1 << max(0, (minimum - 1).bit_length())  # the next power of two always qualifies
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < minimum:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def fft_size(length: int) -> int:
    """FFT size for a linear convolution of ``length`` points: ``>= 2 * length``, a power of
    two while exporting (see the module docstring), else the fastest 5-smooth size."""
    if torch.compiler.is_exporting():
        return 1 << max(0, (2 * length - 1).bit_length())
    return fast_fft_size(2 * length)


def fft_conv(u: torch.Tensor, k: torch.Tensor, k_reverse: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Convolve each channel of ``u`` with its own long filter.

    Args:
        u: ``(..., channels, L)`` input.
        k: ``(channels, L)`` causal taps: ``y[t] = sum_{j>=0} k[j] u[t-j]``.
        k_reverse: optional ``(channels, L)`` anti-causal taps for a bidirectional filter:
            ``k_reverse[j-1]`` multiplies ``u[t+j]`` (lags ``-1 .. -(L-1)``).

    Returns:
        ``(..., channels, L)`` in ``u``'s dtype. The FFT runs in float32 for half-precision
        inputs (bf16 FFTs lose too much precision over long filters) and in float64 for
        float64 inputs (reference computations).
    """
    length = u.shape[-1]
    n = fft_size(length)  # >= 2L: no wrap-around, so causal taps stay causal
    dtype = torch.promote_types(u.dtype, torch.float32)
    with torch.autocast(device_type=u.device.type, enabled=False):
        kernel = k.to(dtype)
        if k_reverse is not None:
            # Anti-causal taps live at the end of the circular buffer (lag -j at index n - j).
            gap = kernel.new_zeros(*kernel.shape[:-1], n - 2 * length + 1)
            kernel = torch.cat([kernel, gap, k_reverse.to(dtype)[..., : length - 1].flip(-1)], -1)
        k_f = torch.fft.rfft(kernel, n=n)
        u_f = torch.fft.rfft(u.to(dtype), n=n)
        y = torch.fft.irfft(u_f * k_f, n=n)[..., :length]
    return y.to(u.dtype)
