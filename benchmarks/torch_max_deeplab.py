#!/usr/bin/env python3
"""Times a PyTorch reference of MaX-DeepLab as `runtime bench max_deeplab_s | max_deeplab_compact [--train]
[--size N]` and `runtime bench dual_path_block [--train] [--size N] [--channels C]` time ours; prints the same
JSON lines (impl "torch").

Usage: OPENBLAS_CORETYPE=SKYLAKEX OPENBLAS_NUM_THREADS=2 /usr/bin/python3 benchmarks/torch_max_deeplab.py
           --case max_deeplab_compact|max_deeplab_s|dual_path_block [--train] [--size N] [--channels C]
           [--threads 2] [--repeat N] [--device cpu|cuda]

The network is the same as src/Runtime.Models/Panoptic (MaxDeepLab, DualPathBlock, AxialBottleneck,
DualPathTransformerLayer, ResizedFuse, PanopticHead, SemanticDecoder with its ASPP for max_deeplab_s;
docs/max-deeplab.md describes it), written here as ordinary
torch modules: torchvision's Bottleneck for the convolutional stages, the axial attention with its batch norms on
q/k/v, similarities and outputs (explicit einsums), the dual-path attention with batch norms on the similarities
and the retrieved values. "parameters" counts its parameters, which equals ours for the same configuration.
Weights: torch's default initialisation after torch.manual_seed(1234) (the numbers differ from ours; the work
does not depend on them).

Eval (default): one --size x --size image in [0, 1] (torch.rand, generator seeded 1234) through preprocessing
(resize the longer side to the input size, normalise, pad), the network in eval mode under no_grad without the
semantic decoder and head (inference does not read them), and the
pixel-wise panoptic post-processing (mask logits resized to the image, slots of class confidence > 0.7 kept,
argmax slot per pixel, void below 0.4), as MaxDeepLab.Predict does.

--train: one Adam step (lr 1e-4) at batch 2 on two torch.randn images, each with the target of
PanopticBench.SyntheticTarget (three rectangles of classes 0, 1, 2 at size * (0.10, 0.15, 0.45, 0.50),
(0.50, 0.20, 0.90, 0.55), (0.30, 0.55, 0.70, 0.95) over a stuff background of the last class): forward, the five
MaX-DeepLab loss terms (Hungarian matching with scipy), backward, step. "loss" is the first step's total.

dual_path_block: one block at MaX-DeepLab-S's last stage (pixels [1, C, size, size] with C = 2048, filters C / 4,
8 axial heads, memory [1, 256, 128], transformer filters 128, 8 heads, FFN 2048), training-mode batch norms;
forward, or with --train forward and backward of sum(pixels) + sum(memory).

Timing: benchmarks/timing.py (one warm-up, then about 15 s of repetitions, 3 to 30, or --repeat).
"""
import argparse
import json
import math
import resource

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

import timing

BOXES = [(0.10, 0.15, 0.45, 0.50), (0.50, 0.20, 0.90, 0.55), (0.30, 0.55, 0.70, 0.95)]

CONFIGS = {
    "max_deeplab_s": dict(num_classes=133, things=80, input_size=641, layers=(3, 4, 6, 3), widths=(64, 128, 256, 512), axial_heads=8,
                          extra=1, slots=128, memory=256, tfilters=128, theads=8, ffn=2048, global_ch=256, dim=128, head=256,
                          semantic_decoder=dict(aspp=256, rates=(6, 12, 18), channels=256, low=(64, 32))),
    "max_deeplab_compact": dict(num_classes=9, things=6, input_size=161, layers=(1, 1, 2, 2), widths=(16, 32, 64, 128), axial_heads=4,
                                extra=0, slots=24, memory=64, tfilters=32, theads=4, ffn=128, global_ch=64, dim=32, head=64,
                                semantic_decoder=None),
}


def rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def feature_size(side, stride):
    s, i = side, 1
    while i < stride:
        s, i = (s - 1) // 2 + 1, i * 2
    return s


class PointwiseConvBn(nn.Module):
    def __init__(self, cin, cout, relu):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) * math.sqrt(2.0 / cin))
        self.bn = nn.BatchNorm1d(cout)
        self.relu = relu

    def forward(self, x):  # [B, Cin, L]
        y = self.bn(torch.matmul(self.weight, x))
        return y.relu() if self.relu else y


class DualPathAttention(nn.Module):
    def __init__(self, heads, value_channels):
        super().__init__()
        self.similarity_bn = nn.BatchNorm2d(heads)
        self.value_bn = nn.BatchNorm1d(value_channels)

    def forward(self, q, k, v):  # q [B, h, dk, Lq], k [B, h, dk, Lk], v [B, h, dv, Lk]
        a = self.similarity_bn(q.transpose(-1, -2) @ k).softmax(-1)
        r = v @ a.transpose(-1, -2)
        return self.value_bn(r.reshape(r.shape[0], -1, r.shape[-1])).relu()


class DualPathTransformerLayer(nn.Module):
    def __init__(self, cp, cm, filters, heads, ffn):
        super().__init__()
        b, self.kd, self.vd, self.h = 2 * filters, filters, 2 * filters, heads
        self.memory_conv1 = PointwiseConvBn(cm, b, True)
        self.pixel_conv1 = PointwiseConvBn(cp, b, True)
        self.memory_qkv = PointwiseConvBn(b, 2 * self.kd + self.vd, False)
        self.pixel_qkv = PointwiseConvBn(b, 2 * self.kd + self.vd, False)
        self.memory_attention = DualPathAttention(heads, self.vd)
        self.pixel_attention = DualPathAttention(heads, self.vd)
        self.memory_conv3 = PointwiseConvBn(self.vd, cm, False)
        self.memory_ffn1 = PointwiseConvBn(cm, ffn, True)
        self.memory_ffn2 = PointwiseConvBn(ffn, cm, False)
        self.pixel_conv3 = PointwiseConvBn(self.vd, cp, False)

    def forward(self, pixels, memory):
        bsz, h, kd, vd = pixels.shape[0], self.h, self.kd, self.vd
        mq = self.memory_qkv(self.memory_conv1(memory))
        pq = self.pixel_qkv(self.pixel_conv1(pixels.relu()))

        def heads(t, start, ch):
            return t[:, start:start + ch].reshape(bsz, h, ch // h, t.shape[-1])
        m_q, m_k, m_v = heads(mq, 0, kd), heads(mq, kd, kd), heads(mq, 2 * kd, vd)
        p_q, p_k, p_v = heads(pq, 0, kd), heads(pq, kd, kd), heads(pq, 2 * kd, vd)
        upd = self.memory_conv3(self.memory_attention(m_q, torch.cat([p_k, m_k], 3), torch.cat([p_v, m_v], 3)))
        mem = (memory + upd).relu()
        mem = (mem + self.memory_ffn2(self.memory_ffn1(mem))).relu()
        pix = pixels + self.pixel_conv3(self.pixel_attention(p_q, m_k, m_v))
        return pix, mem


class AxialAttention(nn.Module):
    def __init__(self, channels, heads, span, axis):
        super().__init__()
        self.c, self.h, self.span, self.axis = channels, heads, span, axis
        self.qkv = nn.Linear(channels, 2 * channels, bias=False)
        dq, dv = channels // 2 // heads, channels // heads
        self.relative_q = nn.Parameter(torch.randn(2 * span - 1, dq) / math.sqrt(dq))
        self.relative_k = nn.Parameter(torch.randn(2 * span - 1, dq) / math.sqrt(dq))
        self.relative_v = nn.Parameter(torch.randn(2 * span - 1, dv) / math.sqrt(dv))
        self.bn_qkv = nn.BatchNorm1d(2 * channels)
        self.bn_similarity = nn.BatchNorm2d(3 * heads)
        self.bn_output = nn.BatchNorm1d(2 * channels)

    def forward(self, x):
        n, c, hh, ww = x.shape
        if self.axis == "height":
            seq, L = x.permute(0, 3, 2, 1).reshape(n * ww, hh, c), hh
        else:
            seq, L = x.permute(0, 2, 3, 1).reshape(n * hh, ww, c), ww
        bs, h, cq = seq.shape[0], self.h, c // 2
        qkv = self.bn_qkv(self.qkv(seq).transpose(1, 2)).transpose(1, 2)
        q = qkv[..., :cq].reshape(bs, L, h, -1).permute(0, 2, 1, 3)
        k = qkv[..., cq:2 * cq].reshape(bs, L, h, -1).permute(0, 2, 1, 3)
        v = qkv[..., 2 * cq:].reshape(bs, L, h, -1).permute(0, 2, 1, 3)
        o = torch.arange(L, device=x.device)
        idx = o[None, :] - o[:, None] + self.span - 1
        rq, rk, rv = self.relative_q[idx], self.relative_k[idx], self.relative_v[idx]
        qk = q @ k.transpose(-1, -2)
        qr = torch.einsum("bhod,opd->bhop", q, rq)
        kr = torch.einsum("bhpd,opd->bhop", k, rk)
        sim = self.bn_similarity(torch.cat([qk, qr, kr], 1)).reshape(bs, 3, h, L, L).sum(1)
        a = sim.softmax(-1)
        sv = a @ v
        av = torch.einsum("bhop,opd->bhod", a, rv)
        both = torch.stack([sv, av], 1).permute(0, 1, 2, 4, 3).reshape(bs, 2 * c, L)
        out = self.bn_output(both).reshape(bs, 2, c, L).sum(1).permute(0, 2, 1)
        if self.axis == "height":
            return out.reshape(n, ww, hh, c).permute(0, 3, 2, 1)
        return out.reshape(n, hh, ww, c).permute(0, 3, 1, 2)


class AxialBottleneck(nn.Module):
    def __init__(self, cin, filters, heads, span):
        super().__init__()
        inner, out = 2 * filters, 4 * filters
        self.conv_down = nn.Conv2d(cin, inner, 1, bias=False)
        self.bn_down = nn.BatchNorm2d(inner)
        self.height = AxialAttention(inner, heads, span, "height")
        self.width = AxialAttention(inner, heads, span, "width")
        self.conv_up = nn.Conv2d(inner, out, 1, bias=False)
        self.bn_up = nn.BatchNorm2d(out)
        self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out)) if cin != out else None

    def pre_activation(self, x):
        z = self.bn_down(self.conv_down(x)).relu()
        z = self.width(self.height(z)).relu()
        z = self.bn_up(self.conv_up(z))
        return z + (self.downsample(x) if self.downsample is not None else x)

    def forward(self, x):
        return self.pre_activation(x).relu()


class DualPathBlock(nn.Module):
    def __init__(self, cin, filters, axial_heads, span, cm, tfilters, theads, ffn):
        super().__init__()
        self.axial = AxialBottleneck(cin, filters, axial_heads, span)
        self.transformer = DualPathTransformerLayer(4 * filters, cm, tfilters, theads, ffn)

    def forward(self, x, memory):
        s = self.axial.pre_activation(x)
        b, c, hh, ww = s.shape
        p, m = self.transformer(s.reshape(b, c, hh * ww), memory)
        return p.relu().reshape(b, c, hh, ww), m


class ResizedFuse(nn.Module):
    def __init__(self, cout, cins):
        super().__init__()
        self.convs = nn.ModuleList([nn.Sequential(nn.Conv2d(c, cout, 1, bias=False), nn.BatchNorm2d(cout)) if c != cout else nn.Identity() for c in cins])
        self.proj = [c != cout for c in cins]

    def forward(self, xs, size):
        out = 0
        for x, conv, proj in zip(xs, self.convs, self.proj):
            if proj:
                x = conv(x.relu())
            if tuple(x.shape[-2:]) != tuple(size):
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
            out = out + x
        return out


class PanopticHead(nn.Module):
    def __init__(self, cin, ch, cout):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 5, padding=2, groups=cin, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(cin)
        self.pointwise = nn.Conv2d(cin, ch, 1, bias=False)
        self.pointwise_bn = nn.BatchNorm2d(ch)
        self.final = nn.Conv2d(ch, cout, 1)

    def forward(self, x):
        return self.final(self.pointwise_bn(self.pointwise(self.depthwise_bn(self.depthwise(x)).relu())).relu())


def conv_bn_relu(cin, cout, k=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Aspp(nn.Module):
    def __init__(self, cin, cout, rates):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout)] + [conv_bn_relu(cin, cout, 3, r) for r in rates])
        self.pool = conv_bn_relu(cin, cout)
        self.project = conv_bn_relu(5 * cout, cout)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        parts = [b(x) for b in self.branches]
        parts.append(self.pool(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.dropout(self.project(torch.cat(parts, 1)))


class SemanticDecoder(nn.Module):
    """DeepLab2's auxiliary semantic decoder: ASPP, then fusion with the stride-8 and stride-4 features."""

    def __init__(self, cin, low_in, c):
        super().__init__()
        self.aspp = Aspp(cin, c["aspp"], c["rates"])
        self.low = nn.ModuleList([conv_bn_relu(ci, cp) for ci, cp in zip(low_in, c["low"])])
        self.fuse = nn.ModuleList()
        ch = c["aspp"]
        for cp in c["low"]:
            self.fuse.append(nn.Sequential(nn.Conv2d(ch + cp, ch + cp, 5, padding=2, groups=ch + cp, bias=False), nn.BatchNorm2d(ch + cp), nn.ReLU(),
                                           conv_bn_relu(ch + cp, c["channels"])))
            ch = c["channels"]
        self.out_channels = ch

    def forward(self, high, lows):
        x = self.aspp(high)
        for low, proj, fuse in zip(lows, self.low, self.fuse):
            low = proj(low)
            x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=True)
            x = fuse(torch.cat([x, low], 1))
        return x


class MaxDeepLab(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        w = c["widths"]
        ch = [4 * x for x in w]
        span = feature_size(c["input_size"], 16)
        self.memory = nn.Parameter(torch.randn(c["memory"], c["slots"]))
        self.conv1 = nn.Conv2d(3, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = w[0]

        def stage(planes, stride, count):
            blocks = []
            for i in range(count):
                s = stride if i == 0 else 1
                down = None
                if s != 1 or self.inplanes != planes * 4:
                    down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, s, bias=False), nn.BatchNorm2d(planes * 4))
                blocks.append(Bottleneck(self.inplanes, planes, s, down))
                self.inplanes = planes * 4
            return blocks
        self.layer1 = nn.Sequential(*stage(w[0], 1, c["layers"][0]))
        self.layer2 = nn.Sequential(*stage(w[1], 2, c["layers"][1]))
        self.layer3 = nn.Sequential(*stage(w[2], 2, 1), *[AxialBottleneck(ch[2], w[2], c["axial_heads"], span) for _ in range(c["layers"][2] - 1)])
        dual = lambda cin: DualPathBlock(cin, w[3], c["axial_heads"], span, c["memory"], c["tfilters"], c["theads"], c["ffn"])
        self.layer4 = nn.ModuleList([dual(ch[2] if i == 0 else ch[3]) for i in range(c["layers"][3])])
        self.extra = nn.ModuleList([dual(ch[3]) for _ in range(c["extra"])])
        self.decoder8 = ResizedFuse(ch[1], [ch[3], ch[1]])
        self.decoder8_block = Bottleneck(ch[1], w[1])
        self.decoder4 = ResizedFuse(ch[0], [ch[1], ch[0]])
        self.decoder4_block = Bottleneck(ch[0], w[0])
        self.pixel_head = PanopticHead(ch[0], c["head"], c["dim"])
        self.pixel_bn = nn.BatchNorm2d(c["dim"])
        self.semantic_decoder = SemanticDecoder(ch[3], (ch[1], ch[0]), c["semantic_decoder"]) if c["semantic_decoder"] else None
        self.semantic_head = PanopticHead(self.semantic_decoder.out_channels if self.semantic_decoder else ch[3], c["head"], c["num_classes"])
        self.class_feature = PointwiseConvBn(c["memory"], c["global_ch"], True)
        self.mask_feature = PointwiseConvBn(c["memory"], c["global_ch"], True)
        self.class_head = nn.Linear(c["global_ch"], c["num_classes"] + 1)
        self.mask_kernel = PointwiseConvBn(c["global_ch"], c["dim"], False)
        self.mask_bn = nn.BatchNorm2d(1)
        with torch.no_grad():
            self.class_head.bias.zero_()
            self.class_head.bias[-1] = math.log(c["num_classes"] * 0.9 / 0.1)

    def forward(self, x, semantic=True):
        b = x.shape[0]
        x = self.maxpool(self.bn1(self.conv1(x)).relu())
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        p = self.layer3(c3)
        memory = self.memory.unsqueeze(0).expand(b, -1, -1)
        for blk in self.layer4:
            p, memory = blk(p, memory)
        backbone = p
        for blk in self.extra:
            p, memory = blk(p, memory)
        d8 = self.decoder8_block(self.decoder8([p, c3], c3.shape[-2:]))
        d4 = self.decoder4_block(self.decoder4([d8, c2], c2.shape[-2:]))
        g = F.normalize(self.pixel_bn(self.pixel_head(d4)), dim=1, eps=1e-6)
        if semantic:
            semantic = self.semantic_head(self.semantic_decoder(backbone, [c3, c2]) if self.semantic_decoder else backbone)
        else:
            semantic = None
        class_logits = self.class_head(self.class_feature(memory).transpose(1, 2))
        kernel = self.mask_kernel(self.mask_feature(memory))
        h4, w4 = g.shape[-2:]
        sim = kernel.transpose(1, 2) @ g.reshape(b, g.shape[1], h4 * w4)
        mask_logits = self.mask_bn(sim.unsqueeze(1)).reshape(b, -1, h4, w4)
        return mask_logits, class_logits, g, semantic


def target(size, num_classes, semantic_stride):
    ids = torch.ones(size, size, dtype=torch.int64)
    for k, (x1, y1, x2, y2) in enumerate(BOXES):
        ids[int(y1 * size):int(y2 * size), int(x1 * size):int(x2 * size)] = k + 2
    classes = {1: num_classes - 1, 2: 0, 3: 1 % num_classes, 4: 2 % num_classes}

    def sample(o):
        idx = torch.tensor([int(math.floor(i * (size - 1) / (o - 1) + 0.5)) for i in range(o)])
        return ids[idx][:, idx].reshape(-1)
    pix, sem = sample(feature_size(size, 4)), sample(feature_size(size, semantic_stride))
    present = [i for i in (1, 2, 3, 4) if (pix == i).any()]
    mask_of = {seg: k for k, seg in enumerate(present)}
    mask_ids = torch.tensor([mask_of.get(int(v), -1) for v in pix])
    return {"mask_ids": mask_ids, "mask_classes": torch.tensor([classes[s] for s in present]),
            "semantic": torch.tensor([classes[int(v)] for v in sem])}


def losses(mask_logits, class_logits, feats, sem_logits, targets, alpha=0.75, tau=0.3):
    from scipy.optimize import linear_sum_assignment  # only the training step needs scipy
    B, N = mask_logits.shape[:2]
    C = class_logits.shape[2] - 1
    terms = {k: 0 for k in ("pq_class", "pq_mask", "mask_id", "instance", "semantic")}
    for b in range(B):
        t = targets[b]
        ids, cls = t["mask_ids"].to(mask_logits.device), t["mask_classes"].to(mask_logits.device)
        K, P = len(cls), ids.numel()
        logits = mask_logits[b].reshape(N, P)
        m, logm = logits.softmax(0), logits.log_softmax(0)
        logp, p = class_logits[b].log_softmax(-1), class_logits[b].softmax(-1)
        valid = (ids >= 0).to(m.dtype)
        y = F.one_hot(ids.clamp(min=0), K).t().to(m.dtype) * valid
        mv = m * valid
        inter = y @ mv.t()
        with torch.no_grad():
            dice = inter / ((y.sum(1)[:, None] + mv.sum(1)[None, :]) / 2 + 1e-5)
            cp = p[:, cls].t()
            rows, cols = linear_sum_assignment((-(dice * cp)).cpu().numpy())
        rows, cols = torch.as_tensor(rows, device=m.device), torch.as_tensor(cols, device=m.device)
        tgt = torch.full((N,), C, dtype=torch.int64, device=m.device)
        tgt[cols] = cls[rows]
        w = torch.full((N,), 1 - alpha, dtype=m.dtype, device=m.device)
        w[cols] = alpha * dice[rows, cols]
        terms["pq_class"] = terms["pq_class"] + 3.0 * -(w * logp.gather(1, tgt[:, None])[:, 0]).sum() / N
        ps, gs = mv[cols], y[rows]
        dl = 1 - (2 * (ps * gs).sum(1) + 1) / (ps.sum(1) + gs.sum(1) + 1)
        terms["pq_mask"] = terms["pq_mask"] + 3.0 * alpha * (dl * cp[rows, cols]).sum() / N
        slot_of = torch.full((K,), -1, dtype=torch.int64, device=m.device)
        slot_of[rows] = cols
        s = slot_of[ids.clamp(min=0)]
        ok = (ids >= 0) & (s >= 0)
        terms["mask_id"] = terms["mask_id"] + 0.3 * -(logm[s[ok], torch.nonzero(ok)[:, 0]]).mean()
        g = feats[b].reshape(feats.shape[1], P)
        mean = F.normalize(g @ y.t() / y.sum(1).clamp(min=1)[None, :], dim=0, eps=1e-6)
        ls = ((mean.t() @ g) / tau).log_softmax(0)
        terms["instance"] = terms["instance"] + -(ls[ids.clamp(min=0), torch.arange(P, device=m.device)] * valid).sum() / valid.sum()
        terms["semantic"] = terms["semantic"] + F.cross_entropy(sem_logits[b].reshape(C, -1).t(), t["semantic"].to(m.device), ignore_index=-1)
    return {k: v / B for k, v in terms.items()}


def predict(model, image, c):
    s = c["input_size"]
    _, h, w = image.shape
    scale = s / max(h, w)
    rh, rw = min(s, max(1, round(h * scale))), min(s, max(1, round(w * scale)))
    x = F.interpolate(image[None], size=(rh, rw), mode="bilinear", align_corners=False) if (rh, rw) != (h, w) else image[None]
    mean = torch.tensor([0.485, 0.456, 0.406], device=image.device)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], device=image.device)[:, None, None]
    x = F.pad((x - mean) / std, (0, s - rw, 0, s - rh))
    mask_logits, class_logits, _, _ = model(x, semantic=False)
    probs = class_logits[0].softmax(-1)[:, :-1]
    conf, cls = probs.max(-1)
    kept = conf > 0.7
    logits = F.interpolate(mask_logits, size=(s, s), mode="bilinear", align_corners=True)[:, :, :rh, :rw]
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]
    best = logits.argmax(0)
    masked = logits.masked_fill(~kept[:, None, None], -1e9)
    prob = masked.softmax(0).gather(0, best[None])[0]
    ids = torch.where(kept[best] & (prob >= 0.4), best + 1, torch.zeros_like(best))
    return len(torch.unique(ids)) - int((ids == 0).any())


def bench_model(name, train, size, repeat, threads, device):
    c = dict(CONFIGS[name])
    c["input_size"] = size
    torch.manual_seed(1234)
    model = MaxDeepLab(c).to(device)
    gen = torch.Generator().manual_seed(1234)
    image = torch.rand(3, size, size, generator=gen).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    counts = {"parameters": sum(p.numel() for p in model.parameters())}
    if train:
        model.train()
        images = torch.randn(2, 3, size, size, generator=gen).to(device)
        targets = [target(size, c["num_classes"], 4 if c["semantic_decoder"] else 16) for _ in range(2)]
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def fn():
            opt.zero_grad(set_to_none=True)
            out = model(images)
            loss = sum(losses(*out, targets).values())
            loss.backward()
            opt.step()
            counts.setdefault("loss", round(float(loss), 6))
        shape = f"2x3x{size}x{size}"
    else:
        model.eval()

        def fn():
            with torch.no_grad():
                counts["segments"] = predict(model, image, c)
        shape = f"1x3x{size}x{size}"
    before = rss_mb()
    med, mn, reps = timing.measure(fn, repeat, sync=sync, before=1, budget_ms=15000, min_reps=3, max_reps=30)
    return {"impl": "torch", "op": name + ("_train" if train else ""), "shape": shape, "dtype": "float32", "device": device,
            "threads": threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
            "img_per_s": round((2 if train else 1) / (med / 1000), 3), **counts,
            "peak_rss_before_mb": before, "peak_rss_mb": rss_mb(), "version": f"torch {torch.__version__}"}


def bench_block(train, size, channels, repeat, threads, device):
    torch.manual_seed(1234)
    block = DualPathBlock(channels, channels // 4, 8, size, 256, 128, 8, 2048).to(device).train()
    gen = torch.Generator().manual_seed(1234)
    pixels = torch.rand(1, channels, size, size, generator=gen).to(device).requires_grad_(train)
    memory = torch.randn(1, 256, 128, generator=gen).to(device).requires_grad_(train)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None

    def fn():
        block.zero_grad(set_to_none=True)
        pixels.grad = memory.grad = None
        with torch.set_grad_enabled(train):
            p, m = block(pixels, memory)
            if train:
                (p.sum() + m.sum()).backward()
    before = rss_mb()
    med, mn, reps = timing.measure(fn, repeat, sync=sync, before=1, budget_ms=15000, min_reps=3, max_reps=30)
    return {"impl": "torch", "op": "dual_path_block" + ("_train" if train else ""), "shape": f"1x{channels}x{size}x{size}", "dtype": "float32",
            "device": device, "threads": threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
            "parameters": sum(p.numel() for p in block.parameters()), "peak_rss_before_mb": before, "peak_rss_mb": rss_mb(),
            "version": f"torch {torch.__version__}"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case", required=True, choices=["max_deeplab_s", "max_deeplab_compact", "dual_path_block"])
    p.add_argument("--train", action="store_true")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--channels", type=int, default=2048)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.case == "dual_path_block":
        r = bench_block(a.train, a.size or 41, a.channels, a.repeat, torch.get_num_threads(), a.device)
    else:
        r = bench_model(a.case, a.train, a.size or CONFIGS[a.case]["input_size"], a.repeat, torch.get_num_threads(), a.device)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
