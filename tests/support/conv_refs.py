"""Plain-loop references for grouped, dilated, depthwise and separable convolution.

Written out longhand, independently of ``convolab``: every output pixel is a sum over the
taps of its window, the padding TensorFlow's (``gradcheck.explicit_padding`` on the dilated
kernel's span ``(k - 1) * d + 1``).
"""

from __future__ import annotations

import numpy as np

from support.gradcheck import explicit_padding


def _padded(x, kernel, strides, padding, dilation):
    n, h, w, c = x.shape
    ho, top, bottom = explicit_padding(h, (kernel[0] - 1) * dilation[0] + 1, strides[0], padding)
    wo, left, right = explicit_padding(w, (kernel[1] - 1) * dilation[1] + 1, strides[1], padding)
    xpad = np.zeros((n, h + top + bottom, w + left + right, c), dtype=np.float64)
    xpad[:, top : top + h, left : left + w, :] = x
    return xpad, ho, wo


def grouped_conv_ref(x, w, b, strides, padding, dilation=(1, 1), groups=1):
    """y[n, i, j, f] = sum over taps and the channels of f's group of x * w, plus b[f]."""
    kh, kw, cg, f = w.shape
    fg = f // groups
    xpad, ho, wo = _padded(x, (kh, kw), strides, padding, dilation)
    y = np.zeros((x.shape[0], ho, wo, f))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for o in range(f):
                    g = o // fg
                    acc = 0.0
                    for di in range(kh):
                        for dj in range(kw):
                            for cc in range(cg):
                                acc += (
                                    xpad[
                                        n,
                                        i * strides[0] + di * dilation[0],
                                        j * strides[1] + dj * dilation[1],
                                        g * cg + cc,
                                    ]
                                    * w[di, dj, cc, o]
                                )
                    y[n, i, j, o] = acc + (0.0 if b is None else b[o])
    return y


def depthwise_conv_ref(x, w, b, strides, padding, dilation=(1, 1)):
    """y[n, i, j, c * dm + m] = sum over taps of x[..., c] * w[..., c, m], plus the bias."""
    kh, kw, c, dm = w.shape
    xpad, ho, wo = _padded(x, (kh, kw), strides, padding, dilation)
    y = np.zeros((x.shape[0], ho, wo, c * dm))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    for m in range(dm):
                        acc = 0.0
                        for di in range(kh):
                            for dj in range(kw):
                                acc += (
                                    xpad[n, i * strides[0] + di * dilation[0], j * strides[1] + dj * dilation[1], ch]
                                    * w[di, dj, ch, m]
                                )
                        y[n, i, j, ch * dm + m] = acc + (0.0 if b is None else b[ch * dm + m])
    return y


def separable_conv_ref(x, dw, pw, b, strides, padding, dilation=(1, 1)):
    """The depthwise reference, then a per-pixel sum over its channels with the pointwise kernel."""
    z = depthwise_conv_ref(x, dw, None, strides, padding, dilation)
    n, ho, wo, k = z.shape
    f = pw.shape[3]
    y = np.zeros((n, ho, wo, f))
    for o in range(f):
        for ch in range(k):
            y[..., o] += z[..., ch] * pw[0, 0, ch, o]
        if b is not None:
            y[..., o] += b[o]
    return y
