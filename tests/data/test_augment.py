"""Batch augmentation: matches a per-image reference, deterministic under a seeded generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from miamind.data.augment import channel_stats, cutout, normalize, random_crop_flip


def _batch(n=64, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


def _reference_crop_flip(images, pad, flip, seed):
    """One image at a time, drawing the same random numbers in the same order."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = images.shape
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    fl = torch.rand(n, generator=g) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    x = images.numpy()
    out = np.empty_like(x)
    for i in range(n):
        p = np.pad(x[i], ((0, 0), (pad, pad), (pad, pad)))  # zero padding
        crop = p[:, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
        out[i] = crop[:, :, ::-1] if fl[i] else crop
    return torch.from_numpy(out)


@pytest.mark.parametrize("pad,flip", [(4, True), (4, False), (2, True), (0, True)])
def test_random_crop_flip_matches_per_image_reference(pad, flip):
    x = _batch(n=200, h=32, w=28)
    got = random_crop_flip(x, pad=pad, flip=flip, generator=torch.Generator().manual_seed(7))
    assert got.shape == x.shape and got.dtype == torch.uint8
    torch.testing.assert_close(got, _reference_crop_flip(x, pad, flip, seed=7), rtol=0, atol=0)


def test_random_crop_flip_is_deterministic_and_random():
    x = _batch()
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_crop_uses_zero_padding_and_all_offsets():
    x = torch.full((4000, 1, 16, 16), 200, dtype=torch.uint8)
    out = random_crop_flip(x, pad=4, flip=False, generator=torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0, 200}  # padding is zeros, not reflected pixels
    # Column 8 / row 8 lie inside the image for every offset; the zero rows (cols) at the top
    # (left) or bottom (right) give the offset: oy - 4 = zeros at bottom - zeros at top.
    col, row = out[:, 0, :, 8], out[:, 0, 8, :]
    dy = (col[:, -4:] == 0).sum(1) - (col[:, :4] == 0).sum(1)
    dx = (row[:, -4:] == 0).sum(1) - (row[:, :4] == 0).sum(1)
    assert set(dy.tolist()) == set(range(-4, 5)) and set(dx.tolist()) == set(range(-4, 5))
    # offsets are independent per axis: all 81 combinations occur
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) == 81


def test_flip_probability_is_one_half():
    x = torch.arange(8, dtype=torch.uint8).view(1, 1, 1, 8).repeat(4000, 1, 1, 1)
    out = random_crop_flip(x, pad=0, flip=True, generator=torch.Generator().manual_seed(3))
    flipped = (out[:, 0, 0, 0] == 7).float().mean().item()
    assert torch.equal(out[:, 0, 0, 0].unique(), torch.tensor([0, 7], dtype=torch.uint8))
    assert 0.46 < flipped < 0.54


def _reference_cutout(images, size, seed, fill=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = images.shape
    cy = torch.randint(0, h, (n,), generator=g)
    cx = torch.randint(0, w, (n,), generator=g)
    out = images.clone()
    fill = torch.as_tensor(fill, dtype=images.dtype).reshape(-1, 1, 1)
    for i in range(n):
        y0, x0 = max(0, cy[i] - size // 2), max(0, cx[i] - size // 2)
        y1, x1 = min(h, cy[i] - size // 2 + size), min(w, cx[i] - size // 2 + size)
        out[i, :, y0:y1, x0:x1] = fill
    return out


@pytest.mark.parametrize("size,fill", [(8, 0), (16, 0), (5, [125, 123, 114])])
def test_cutout_matches_reference(size, fill):
    x = _batch(n=300)
    got = cutout(x, size, generator=torch.Generator().manual_seed(11), fill=fill)
    torch.testing.assert_close(got, _reference_cutout(x, size, 11, fill), rtol=0, atol=0)
    changed = (got != x).any(1).sum((1, 2))
    assert int(changed.max()) <= size * size and int(changed.max()) > 0


def test_cutout_zero_size_and_bad_args():
    x = _batch(n=4)
    assert torch.equal(cutout(x, 0), x)
    with pytest.raises(ValueError, match="fill has 2 values for 3 channels"):
        cutout(x, 4, fill=[1, 2])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(3, 32, 32\)"):
        cutout(x[0], 4)
    with pytest.raises(ValueError, match="pad must be >= 0"):
        random_crop_flip(x, pad=-1)


def test_normalize():
    x = _batch(n=5)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = normalize(x, mean, std)
    expect = (x.double() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expect, rtol=0, atol=1e-5)
    with pytest.raises(TypeError, match="uint8"):
        normalize(x.float(), mean, std)
    with pytest.raises(ValueError, match="3 channels but mean has 2"):
        normalize(x, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="std must be > 0"):
        normalize(x, mean, (0.2, 0.0, 0.3))


def test_channel_stats_exact_and_layout_independent():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    nhwc[..., 2] //= 2  # make channels differ
    mean, std = channel_stats(nhwc, layout="NHWC")
    ref = nhwc.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, ref.std(0), rtol=0, atol=1e-12)
    nchw = torch.from_numpy(nhwc).permute(0, 3, 1, 2)
    assert channel_stats(nchw) == (mean, std)
    # normalising with the statistics gives zero mean / unit std per channel
    z = normalize(nchw.contiguous(), mean, std).double()
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        z.std((0, 2, 3), correction=0), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-5
    )


def test_channel_stats_rejects_wrong_layout_and_dtype():
    nhwc = np.zeros((10, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="looks like NHWC"):
        channel_stats(nhwc)  # default layout is NCHW
    with pytest.raises(TypeError, match="uint8"):
        channel_stats(nhwc.astype(np.float32), layout="NHWC")
    with pytest.raises(ValueError, match="non-empty 4-D"):
        channel_stats(nhwc[:0], layout="NHWC")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_on_cuda_matches_cpu():
    x = _batch(n=128)
    for fn in (lambda t, g: random_crop_flip(t, generator=g), lambda t, g: cutout(t, 8, generator=g)):
        cpu = fn(x, torch.Generator().manual_seed(5))
        gpu = fn(x.cuda(), torch.Generator().manual_seed(5))
        assert gpu.device.type == "cuda"
        assert torch.equal(gpu.cpu(), cpu)
