"""PyTorch counterpart of the inversion-UNet training-step benchmark (`examples/train_step.rs`).

    python tools/bench_unet_torch.py [--sizes 128,256] [--steps 3] [--batch 4] [--threads 2]
           [--base-width 32] [--depth 4] [--in-channels 128] [--per-128 600]

Same architecture and parameter count as featleak's UNet: double conv3x3 (+BatchNorm+ReLU)
encoder with widths base*2^i and 2x2 max-pools, decoder of ConvTranspose2d(2x2, stride 2) +
concat(skip, up) + double conv, 1x1 head + sigmoid; the first conv has a bias, the BN-followed
convs have none. Dense B x C x H x W input with ~600 non-zero pixels per 128^2 image (features
uniform in [0, 1)), random target, loss = mean|p - t| + (1 - SSIM) with an 11x11 Gaussian
(sigma 1.5) 'valid' window, Adam(lr 1e-3, eps 1e-8). Prints the median seconds per step
(forward + backward + Adam) after one warm-up step.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class UNet(nn.Module):
    def __init__(self, in_channels, base_width=32, depth=4, out_channels=3):
        super().__init__()
        w = [base_width << i for i in range(depth + 1)]
        self.first = nn.Sequential(nn.Conv2d(in_channels, w[0], 3, padding=1, bias=True), nn.BatchNorm2d(w[0]),
                                   nn.ReLU(inplace=True), *conv_bn_relu(w[0], w[0]))
        self.downs = nn.ModuleList(nn.Sequential(*conv_bn_relu(w[i - 1], w[i]), *conv_bn_relu(w[i], w[i]))
                                   for i in range(1, depth + 1))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2) for i in range(depth, 0, -1))
        self.up_convs = nn.ModuleList(nn.Sequential(*conv_bn_relu(2 * w[i - 1], w[i - 1]), *conv_bn_relu(w[i - 1], w[i - 1]))
                                      for i in range(depth, 0, -1))
        self.head = nn.Conv2d(w[0], out_channels, 1)

    def forward(self, x):
        x = self.first(x)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(F.max_pool2d(x, 2))
        for up, conv in zip(self.ups, self.up_convs):
            x = conv(torch.cat([skips.pop(), up(x)], 1))
        return torch.sigmoid(self.head(x))


def gaussian_taps(size=11, sigma=1.5):
    r = size // 2
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - r) ** 2) / (2 * sigma * sigma))
    return (g / g.sum()).float()


def ssim_valid(p, t, taps):
    b, c, h, w = p.shape
    x = torch.cat([p, t, p * p, t * t, p * t], 0).reshape(5 * b * c, 1, h, w)
    x = F.conv2d(x, taps.view(1, 1, 1, -1))
    x = F.conv2d(x, taps.view(1, 1, -1, 1))
    ux, uy, uxx, uyy, uxy = x.reshape(5, b, c, h - 10, w - 10)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--in-channels", type=int, default=128)
    ap.add_argument("--per-128", type=int, default=600)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    taps = gaussian_taps()
    net = UNet(a.in_channels, a.base_width, a.depth)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, params {sum(p.numel() for p in net.parameters())}")
    for s in [int(v) for v in a.sizes.split(",")]:
        net = UNet(a.in_channels, a.base_width, a.depth).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
        per_item = a.per_128 * s * s // (128 * 128)
        x = torch.zeros(a.batch, a.in_channels, s * s)
        for b in range(a.batch):
            idx = torch.randperm(s * s)[:per_item]
            x[b][:, idx] = torch.rand(a.in_channels, per_item)
        x = x.reshape(a.batch, a.in_channels, s, s)
        t = torch.rand(a.batch, 3, s, s)
        times = []
        for i in range(a.steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            p = net(x)
            loss = (p - t).abs().mean() + (1 - ssim_valid(p, t, taps))
            loss.backward()
            opt.step()
            if i > 0:
                times.append(time.perf_counter() - t0)
        print(f"{s}^2 batch {a.batch} K/img {per_item}: {statistics.median(times):.3f} s/step "
              f"(all: {', '.join(f'{v:.3f}' for v in times)})")


if __name__ == "__main__":
    main()
