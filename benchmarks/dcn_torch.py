"""DCNv2 parts in plain PyTorch / torchvision (no mmcv), for the benchmarks that time the same networks as ours:

- DeformConvPack: mmcv's ModulatedDeformConv2dPack (or DeformConv2dPack) on torchvision.ops.deform_conv2d, as a
  ResNet block's 3x3 convolution (conv_offset zero-initialised, o1, o2, m = chunk(3); offset = cat(o1, o2);
  mask = sigmoid(m)).
- deform_roi_pool: modulated deformable RoI pooling (DCNv2 section 3, mmcv's conventions; the semantics of
  RoiOps.DeformRoiPool and of tests/Runtime.Vision.Tests/golden/ops/make_deform_roi.py), vectorised over rois, bins
  and samples with index gathers (a fixed sampling ratio only).
- ModulatedDeformRoIPoolPack and MultiScaleDeformRoIPool: mmcv's pack (offset_fc 3 layers, mask_fc 2 layers + sigmoid,
  last layers zero) shared by the FPN levels, torchvision's level assignment (as MultiScaleDeformRoIPool in
  src/Runtime.Vision/Ops/RoiModules.cs).
- make_dcnv2(model): a torchvision Faster / Mask R-CNN turned into the catalogue's *_dcnv2 model (modulated deformable
  3x3 convolutions in layer2-layer4, the box pooling replaced); R-CNN feature mimicking is training-only and not built.
"""
import math

import torch
import torchvision
from torch import nn


class DeformConvPack(nn.Module):
    def __init__(self, conv, modulated=True):
        super().__init__()
        self.modulated = modulated
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.weight = nn.Parameter(conv.weight.detach().clone())
        k = conv.kernel_size[0] * conv.kernel_size[1]
        self.conv_offset = nn.Conv2d(conv.in_channels, (3 if modulated else 2) * k, conv.kernel_size, conv.stride,
                                     conv.padding, conv.dilation, bias=True)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x):
        out = self.conv_offset(x)
        if self.modulated:
            o1, o2, m = torch.chunk(out, 3, dim=1)
            offset, mask = torch.cat((o1, o2), dim=1), torch.sigmoid(m)
        else:
            offset, mask = out, None
        return torchvision.ops.deform_conv2d(x, offset, self.weight, None, self.stride, self.padding, self.dilation, mask)


def _bilinear_gather(flat, base, y, x, h, w):
    """RoIAlign's bilinear read at positions y, x ([M] each, roi image offsets base [M] into the flattened N*H*W
    plane) of flat [C, N*H*W]: [C, M]."""
    valid = (y >= -1) & (y <= h) & (x >= -1) & (x <= w)
    y = y.clamp(min=0, max=h)
    x = x.clamp(min=0, max=w)
    y0 = y.floor().long()
    x0 = x.floor().long()
    y_edge, x_edge = y0 >= h - 1, x0 >= w - 1
    y0 = torch.where(y_edge, torch.full_like(y0, h - 1), y0)
    x0 = torch.where(x_edge, torch.full_like(x0, w - 1), x0)
    y1 = torch.where(y_edge, y0, y0 + 1)
    x1 = torch.where(x_edge, x0, x0 + 1)
    y = torch.where(y_edge, y0.to(y.dtype), y)
    x = torch.where(x_edge, x0.to(x.dtype), x)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    wts = valid.to(y.dtype)
    v = (flat[:, base + y0 * w + x0] * (hy * hx * wts) + flat[:, base + y0 * w + x1] * (hy * lx * wts)
         + flat[:, base + y1 * w + x0] * (ly * hx * wts) + flat[:, base + y1 * w + x1] * (ly * lx * wts))
    return v


def deform_roi_pool(x, rois, offset, mask, output_size, spatial_scale, sampling_ratio=2, gamma=0.1, aligned=True):
    """[K, C, ph, pw]; offset [K, 2, ph, pw] (x first) and mask [K, 1, ph, pw] may be None."""
    assert sampling_ratio > 0, "the vectorised reference needs a fixed sampling ratio"
    n, c, h, w = x.shape
    k = rois.shape[0]
    ph, pw = output_size
    g = sampling_ratio
    if k == 0:
        return x.new_zeros(0, c, ph, pw)
    shift = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - shift
    y1 = rois[:, 2] * spatial_scale - shift
    rw = rois[:, 3] * spatial_scale - shift - x1
    rh = rois[:, 4] * spatial_scale - shift - y1
    if not aligned:
        rw, rh = rw.clamp(min=1), rh.clamp(min=1)
    bw, bh = rw / pw, rh / ph
    i = torch.arange(ph, device=x.device, dtype=x.dtype)
    j = torch.arange(pw, device=x.device, dtype=x.dtype)
    a = torch.arange(g, device=x.device, dtype=x.dtype) + 0.5
    sy = y1[:, None, None] + i[None, :, None] * bh[:, None, None]  # [K, ph, 1]
    sx = x1[:, None, None] + j[None, None, :] * bw[:, None, None]  # [K, 1, pw]
    sy, sx = sy.expand(k, ph, pw), sx.expand(k, ph, pw)
    if offset is not None:
        sx = sx + gamma * rw[:, None, None] * offset[:, 0]
        sy = sy + gamma * rh[:, None, None] * offset[:, 1]
    ys = sy[..., None, None] + (a[:, None] * bh[:, None, None, None, None] / g)  # [K, ph, pw, g, 1]
    xs = sx[..., None, None] + (a[None, :] * bw[:, None, None, None, None] / g)  # [K, ph, pw, 1, g]
    ys, xs = ys.expand(k, ph, pw, g, g).reshape(-1), xs.expand(k, ph, pw, g, g).reshape(-1)
    base = (rois[:, 0].long() * (h * w))[:, None].expand(k, ph * pw * g * g).reshape(-1)
    flat = x.permute(1, 0, 2, 3).reshape(c, n * h * w)
    v = _bilinear_gather(flat, base, ys, xs, h, w).reshape(c, k, ph, pw, g * g).mean(-1).permute(1, 0, 2, 3)
    return v * mask if mask is not None else v


class ModulatedDeformRoIPoolPack(nn.Module):
    def __init__(self, output_size, channels, fc=1024, sampling_ratio=2, gamma=0.1, aligned=False, modulated=True):
        super().__init__()
        self.output_size, self.sampling_ratio, self.gamma, self.aligned = output_size, sampling_ratio, gamma, aligned
        bins = output_size[0] * output_size[1]
        self.offset_fc = nn.Sequential(nn.Linear(channels * bins, fc), nn.ReLU(inplace=True), nn.Linear(fc, fc),
                                       nn.ReLU(inplace=True), nn.Linear(fc, 2 * bins))
        nn.init.zeros_(self.offset_fc[-1].weight)
        nn.init.zeros_(self.offset_fc[-1].bias)
        self.mask_fc = None
        if modulated:
            self.mask_fc = nn.Sequential(nn.Linear(channels * bins, fc), nn.ReLU(inplace=True), nn.Linear(fc, bins), nn.Sigmoid())
            nn.init.zeros_(self.mask_fc[2].weight)
            nn.init.zeros_(self.mask_fc[2].bias)

    def forward(self, x, rois, scale):
        k = rois.shape[0]
        ph, pw = self.output_size
        plain = deform_roi_pool(x, rois, None, None, self.output_size, scale, self.sampling_ratio, self.gamma, self.aligned)
        flat = plain.reshape(k, -1)
        offset = self.offset_fc(flat).reshape(k, 2, ph, pw)
        mask = self.mask_fc(flat).reshape(k, 1, ph, pw) if self.mask_fc is not None else None
        return deform_roi_pool(x, rois, offset, mask, self.output_size, scale, self.sampling_ratio, self.gamma, self.aligned)


class MultiScaleDeformRoIPool(nn.Module):
    """torchvision's MultiScaleRoIAlign level assignment (scales 2^round(log2(feature / image height)), level
    floor(4 + log2(sqrt(area) / 224) + 1e-6) clamped) with every level pooled by one shared pack."""

    def __init__(self, featmap_names, output_size, sampling_ratio, channels, fc=1024, modulated=True):
        super().__init__()
        self.featmap_names = featmap_names
        self.pack = ModulatedDeformRoIPoolPack((output_size, output_size), channels, fc, sampling_ratio, modulated=modulated)

    def forward(self, x, boxes, image_shapes):
        maps = [v for k, v in x.items() if k in self.featmap_names]
        max_h = max(s[0] for s in image_shapes)
        scales = [2.0 ** round(math.log2(m.shape[-2] / max_h)) for m in maps]
        k_min, k_max = -math.log2(scales[0]), -math.log2(scales[-1])
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], 1) for i, b in enumerate(boxes)])
        area = (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])
        levels = torch.floor(4 + torch.log2(torch.sqrt(area) / 224) + 1e-6).clamp(k_min, k_max).long() - int(k_min)
        out = rois.new_zeros(rois.shape[0], maps[0].shape[1], *self.pack.output_size)
        for level, (m, s) in enumerate(zip(maps, scales)):
            idx = torch.where(levels == level)[0]
            if idx.numel():
                out[idx] = self.pack(m, rois[idx], s).to(out.dtype)
        return out


def make_dcnv2(model, stages=(2, 3, 4), box_pool=True, fc=1024):
    """model (torchvision Faster / Mask R-CNN on a ResNet body) with modulated deformable 3x3 convolutions in the
    given layers and, with box_pool, the modulated deformable RoI pooling in the box branch."""
    body = model.backbone.body
    for stage in stages:
        for block in getattr(body, f"layer{stage}"):
            block.conv2 = DeformConvPack(block.conv2)
    if box_pool:
        old = model.roi_heads.box_roi_pool
        size = old.output_size[0] if isinstance(old.output_size, (tuple, list)) else old.output_size
        model.roi_heads.box_roi_pool = MultiScaleDeformRoIPool(old.featmap_names, size, old.sampling_ratio,
                                                               model.backbone.out_channels, fc)
    return model
