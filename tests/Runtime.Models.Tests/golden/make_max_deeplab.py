"""Goldens for the MaX-DeepLab tests: a PyTorch reference of the dual-path block and of the losses.

Run with /usr/bin/python3 (torch 1.13, scipy) from anywhere; it writes next to this file, and running it twice gives
identical files (seeded, one thread). Both references are written from the paper (Wang et al. 2021), shared/SPEC.md
and the C# documentation of the same parts, independently of the C# code.

Files:
  max_deeplab_block.pth   state dict of the dual-path block (the C# key names), float32
  max_deeplab_block.json  config, inputs, outputs and gradients of the block (layout below)
  max_deeplab_semantic.*  the auxiliary semantic decoder: state dict and its inputs, outputs and gradients
  max_deeplab_loss.json   random slot outputs and ground truths, the matching, each loss term and its gradients

Tensors in the JSON are {"shape": [...], "data": [flat row-major values]}.

max_deeplab_block.json: the block is DualPathBlock(in_channels, filters, axial_heads, span, memory_channels,
transformer_filters, transformer_heads, ffn_channels) = the axial bottleneck (conv_down 1x1 -> bn_down -> relu ->
height axial attention -> width axial attention -> relu -> conv_up 1x1 -> bn_up, plus downsample(x) = bn(conv 1x1),
no final relu) followed by the transformer layer on the flattened pixels (see `transformer` below); the block's
outputs are relu(pixels) [B, 4 filters, H, W] and the memory [B, Cm, N]. Every parameter and running statistic is
random (seeded); the float32 values are saved in the .pth, and the reference is computed in float64 from them.
  inputs: pixels [B, Cin, H, W] (non-negative: an activated input), memory [B, Cm, N], grad_pixels, grad_memory
          (the loss differentiated is sum(pixels_out * grad_pixels) + sum(memory_out * grad_memory))
  train: batch-norm batch statistics; pixels_out, memory_out, grads {input names and every parameter name},
         running_mean / running_var of a few batch norms after the forward (momentum 0.1, unbiased variance)
  eval:  running statistics; pixels_out, memory_out, grads of the two inputs

max_deeplab_semantic.pth / .json: DeepLab2's auxiliary semantic decoder (MaX-DeepLab with L = 0) with its dropout
off: ASPP on the stride-16 input `high` (branches conv 1x1, atrous{1,2,3} 3x3 dilated by the rates, pool = global
average -> 1x1; each with BN and ReLU; concatenated in that order, project 1x1 + BN + ReLU), then for the stride-8
and stride-4 inputs `low0`, `low1`: low{i} = ReLU(BN(conv 1x1)), the decoded features resized to it (bilinear,
aligned corners), concatenated [decoded, low{i}] and fused by fuse{i} = 5x5 depthwise conv, BN, ReLU, 1x1 conv, BN,
ReLU. Inputs high, low0, low1 and grad_out; train / eval: out and grads (the three inputs and, in train, every
parameter).

max_deeplab_loss.json (float64): B images, N slots, C classes (+ void last), masks at h x w, features of D channels,
semantic logits at hs x ws. Inputs mask_logits [B, N, h, w], class_logits [B, N, C + 1], pixel_features [B, D, h, w]
(unit length along D), semantic_logits [B, C, hs, ws]; targets[b] = {mask_ids [h*w] (-1 void), mask_classes [K],
semantic_labels [hs*ws] (-1 void)}; options {alpha, temperature, weights}. Outputs: matches[b] = {gt, slot} (scipy's
linear_sum_assignment of the cost -(dice x class probability), K x N), terms {name: value} (already weighted, batch
means), grads {name: gradient of that term with respect to the one input it depends on}.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)


def tj(t, digits=9):
    t = t.detach()
    flat = t.reshape(-1).tolist()
    if t.dtype in (torch.int64, torch.int32):
        return {"shape": list(t.shape), "data": [int(v) for v in flat]}
    fmt = "%.{}g".format(digits)
    return {"shape": list(t.shape), "data": [float(fmt % v) for v in flat]}


# ---------------------------------------------------------------- the dual-path block

CFG = dict(batch=2, in_channels=24, filters=8, axial_heads=2, span=7, height=5, width=7,
           memory_channels=16, slots=5, transformer_filters=8, transformer_heads=2, ffn_channels=24)


def bn_keys(prefix, c, g):
    return {prefix + ".weight": torch.rand(c, generator=g) + 0.5,
            prefix + ".bias": torch.randn(c, generator=g) * 0.1,
            prefix + ".running_mean": torch.randn(c, generator=g) * 0.1,
            prefix + ".running_var": torch.rand(c, generator=g) + 0.5,
            prefix + ".num_batches_tracked": torch.tensor(0, dtype=torch.int64)}


def block_params(cfg, g):
    p = {}
    cin, f = cfg["in_channels"], cfg["filters"]
    inner, out = 2 * f, 4 * f
    span, ah = cfg["span"], cfg["axial_heads"]
    p["axial.conv_down.weight"] = torch.randn(inner, cin, 1, 1, generator=g) / cin ** 0.5
    p.update(bn_keys("axial.bn_down", inner, g))
    for axis in ("height", "width"):
        pre = "axial." + axis
        p[pre + ".qkv.weight"] = torch.randn(2 * inner, inner, generator=g) / inner ** 0.5
        p[pre + ".relative_q"] = torch.randn(2 * span - 1, inner // 2 // ah, generator=g) * 0.5
        p[pre + ".relative_k"] = torch.randn(2 * span - 1, inner // 2 // ah, generator=g) * 0.5
        p[pre + ".relative_v"] = torch.randn(2 * span - 1, inner // ah, generator=g) * 0.5
        p.update(bn_keys(pre + ".bn_qkv", 2 * inner, g))
        p.update(bn_keys(pre + ".bn_similarity", 3 * ah, g))
        p.update(bn_keys(pre + ".bn_output", 2 * inner, g))
    p["axial.conv_up.weight"] = torch.randn(out, inner, 1, 1, generator=g) / inner ** 0.5
    p.update(bn_keys("axial.bn_up", out, g))
    p["axial.downsample.0.weight"] = torch.randn(out, cin, 1, 1, generator=g) / cin ** 0.5
    p.update(bn_keys("axial.downsample.1", out, g))
    cm, tf, th, ffn = cfg["memory_channels"], cfg["transformer_filters"], cfg["transformer_heads"], cfg["ffn_channels"]
    bott, kd, vd = 2 * tf, tf, 2 * tf

    def pw(name, cin_, cout_):
        p["transformer." + name + ".weight"] = torch.randn(cout_, cin_, generator=g) / cin_ ** 0.5
        p.update(bn_keys("transformer." + name + ".bn", cout_, g))
    pw("memory_conv1", cm, bott)
    pw("pixel_conv1", out, bott)
    pw("memory_qkv", bott, 2 * kd + vd)
    pw("pixel_qkv", bott, 2 * kd + vd)
    for att in ("memory_attention", "pixel_attention"):
        p.update(bn_keys("transformer." + att + ".similarity_bn", th, g))
        p.update(bn_keys("transformer." + att + ".value_bn", vd, g))
    pw("memory_conv3", vd, cm)
    pw("memory_ffn1", cm, ffn)
    pw("memory_ffn2", ffn, cm)
    pw("pixel_conv3", vd, out)
    return p


class Ref:
    """The block's reference forward over a dict of float64 parameters (requires_grad) and buffers."""

    def __init__(self, cfg, params, train):
        self.cfg, self.p, self.train = cfg, params, train
        self.buffers = {k: v.clone() for k, v in params.items() if "running" in k}

    def bn(self, x, prefix):
        return F.batch_norm(x, self.buffers[prefix + ".running_mean"], self.buffers[prefix + ".running_var"],
                            self.p[prefix + ".weight"], self.p[prefix + ".bias"], self.train, 0.1, 1e-5)

    def axial(self, x, pre, axis):
        n, c, hh, ww = x.shape
        heads, span = self.cfg["axial_heads"], self.cfg["span"]
        if axis == "height":
            seq, L = x.permute(0, 3, 2, 1).reshape(n * ww, hh, c), hh
        else:
            seq, L = x.permute(0, 2, 3, 1).reshape(n * hh, ww, c), ww
        bs = seq.shape[0]
        qkv = seq @ self.p[pre + ".qkv.weight"].t()                       # [bs, L, 2C]
        qkv = self.bn(qkv.transpose(1, 2), pre + ".bn_qkv").transpose(1, 2)
        cq, dq, dv = c // 2, c // 2 // heads, c // heads
        q = qkv[..., :cq].reshape(bs, L, heads, dq).permute(0, 2, 1, 3)
        k = qkv[..., cq:2 * cq].reshape(bs, L, heads, dq).permute(0, 2, 1, 3)
        v = qkv[..., 2 * cq:].reshape(bs, L, heads, dv).permute(0, 2, 1, 3)
        o = torch.arange(L)
        idx = o[None, :] - o[:, None] + span - 1                          # [o, p] -> p - o + span - 1
        rq, rk, rv = (self.p[pre + ".relative_" + s][idx] for s in "qkv")
        qk = torch.einsum("bhod,bhpd->bhop", q, k)
        qr = torch.einsum("bhod,opd->bhop", q, rq)
        kr = torch.einsum("bhpd,opd->bhop", k, rk)
        sim = self.bn(torch.cat([qk, qr, kr], 1), pre + ".bn_similarity").reshape(bs, 3, heads, L, L).sum(1)
        a = sim.softmax(-1)
        sv = torch.einsum("bhop,bhpd->bhod", a, v)
        av = torch.einsum("bhop,opd->bhod", a, rv)
        both = torch.stack([sv, av], 1).permute(0, 1, 2, 4, 3).reshape(bs, 2 * c, L)
        out = self.bn(both, pre + ".bn_output").reshape(bs, 2, c, L).sum(1).permute(0, 2, 1)  # [bs, L, C]
        if axis == "height":
            return out.reshape(n, ww, hh, c).permute(0, 3, 2, 1)
        return out.reshape(n, hh, ww, c).permute(0, 3, 1, 2)

    def axial_block(self, x):
        p = self.p
        z = self.bn(F.conv2d(x, p["axial.conv_down.weight"]), "axial.bn_down").relu()
        z = self.axial(self.axial(z, "axial.height", "height"), "axial.width", "width").relu()
        z = self.bn(F.conv2d(z, p["axial.conv_up.weight"]), "axial.bn_up")
        s = self.bn(F.conv2d(x, p["axial.downsample.0.weight"]), "axial.downsample.1")
        return z + s

    def pw(self, x, name, relu):
        y = self.bn(torch.einsum("oc,bcl->bol", self.p["transformer." + name + ".weight"], x), "transformer." + name + ".bn")
        return y.relu() if relu else y

    def attention(self, q, k, v, name):
        # q [B, h, Lq, dk], k [B, h, Lk, dk], v [B, h, Lk, dv]
        sim = self.bn(torch.einsum("bhid,bhjd->bhij", q, k), "transformer." + name + ".similarity_bn")
        a = sim.softmax(-1)
        r = torch.einsum("bhij,bhjd->bhid", a, v)                        # [B, h, Lq, dv]
        b, h, lq, dv = r.shape
        r = r.permute(0, 1, 3, 2).reshape(b, h * dv, lq)                 # channel = head * dv + d
        return self.bn(r, "transformer." + name + ".value_bn").relu()

    def transformer(self, pix, mem):
        """pix [B, Cp, L] before activation, mem [B, Cm, N]."""
        tf, th = self.cfg["transformer_filters"], self.cfg["transformer_heads"]
        kd, vd = tf, 2 * tf
        b, _, L = pix.shape
        n = mem.shape[2]
        ms = self.pw(mem, "memory_conv1", True)
        ps = self.pw(pix.relu(), "pixel_conv1", True)
        mqkv, pqkv = self.pw(ms, "memory_qkv", False), self.pw(ps, "pixel_qkv", False)

        def heads(t, start, ch, length):  # [B, C, L] slice -> [B, h, L, d]
            return t[:, start:start + ch].reshape(b, th, ch // th, length).permute(0, 1, 3, 2)
        mq, mk, mv = heads(mqkv, 0, kd, n), heads(mqkv, kd, kd, n), heads(mqkv, 2 * kd, vd, n)
        pq, pk, pv = heads(pqkv, 0, kd, L), heads(pqkv, kd, kd, L), heads(pqkv, 2 * kd, vd, L)
        m_att = self.attention(mq, torch.cat([pk, mk], 2), torch.cat([pv, mv], 2), "memory_attention")
        mem_out = (mem + self.pw(m_att, "memory_conv3", False)).relu()
        mem_out = (mem_out + self.pw(self.pw(mem_out, "memory_ffn1", True), "memory_ffn2", False)).relu()
        p_att = self.attention(pq, mk, mv, "pixel_attention")
        pix_out = pix + self.pw(p_att, "pixel_conv3", False)
        return pix_out, mem_out

    def block(self, x, mem):
        s = self.axial_block(x)
        b, c, hh, ww = s.shape
        p, m = self.transformer(s.reshape(b, c, hh * ww), mem)
        return p.relu().reshape(b, c, hh, ww), m


def make_block():
    cfg = CFG
    g = torch.Generator().manual_seed(15)
    params32 = block_params(cfg, g)
    torch.save(params32, os.path.join(HERE, "max_deeplab_block.pth"))
    b, cin, h, w = cfg["batch"], cfg["in_channels"], cfg["height"], cfg["width"]
    pixels = torch.randn(b, cin, h, w, generator=g).relu()
    memory = torch.randn(b, cfg["memory_channels"], cfg["slots"], generator=g)
    gp = torch.randn(b, 4 * cfg["filters"], h, w, generator=g)
    gm = torch.randn(b, cfg["memory_channels"], cfg["slots"], generator=g)
    doc = {"config": cfg, "checkpoint": "max_deeplab_block.pth", "torch": torch.__version__,
           "inputs": {"pixels": tj(pixels), "memory": tj(memory), "grad_pixels": tj(gp), "grad_memory": tj(gm)}}
    for mode in ("train", "eval"):
        params = {k: (v.double().requires_grad_(True) if v.is_floating_point() and "running" not in k else v.double() if v.is_floating_point() else v)
                  for k, v in params32.items()}
        x = pixels.double().requires_grad_(True)
        m = memory.double().requires_grad_(True)
        ref = Ref(cfg, params, mode == "train")
        po, mo = ref.block(x, m)
        loss = (po * gp.double()).sum() + (mo * gm.double()).sum()
        loss.backward()
        out = {"pixels_out": tj(po), "memory_out": tj(mo)}
        grads = {"pixels": tj(x.grad), "memory": tj(m.grad)}
        if mode == "train":
            for k, v in params.items():
                if v.requires_grad:
                    grads[k] = tj(v.grad)
            out["running"] = {k: tj(ref.buffers[k]) for k in (
                "axial.height.bn_similarity.running_mean", "axial.width.bn_output.running_var",
                "transformer.memory_attention.value_bn.running_var", "transformer.pixel_conv3.bn.running_mean")}
        out["grads"] = grads
        doc[mode] = out
    with open(os.path.join(HERE, "max_deeplab_block.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


# ---------------------------------------------------------------- the auxiliary semantic decoder

SEM = dict(batch=3, high_channels=12, low_channels=[10, 6], projections=[4, 3], aspp_channels=6, rates=[1, 2, 3],
           decoder_channels=5, sizes=[4, 7, 13])


def semantic_params(cfg, g):
    p = {}

    def conv_bn(name, cin, cout, k, groups=1):
        p[name + ".0.weight"] = torch.randn(cout, cin // groups, k, k, generator=g) * (2.0 / (cin // groups * k * k)) ** 0.5
        p.update(bn_keys(name + ".1", cout, g))

    a, hc = cfg["aspp_channels"], cfg["high_channels"]
    conv_bn("aspp.conv", hc, a, 1)
    for i in range(3):
        conv_bn("aspp.atrous%d" % (i + 1), hc, a, 3)
    conv_bn("aspp.pool", hc, a, 1)
    conv_bn("aspp.project", 5 * a, a, 1)
    c = a
    for i, (cl, cp) in enumerate(zip(cfg["low_channels"], cfg["projections"])):
        conv_bn("low%d" % i, cl, cp, 1)
        cin = c + cp
        p["fuse%d.depthwise.weight" % i] = torch.randn(cin, 1, 5, 5, generator=g) * (2.0 / 25) ** 0.5
        p.update(bn_keys("fuse%d.depthwise_bn" % i, cin, g))
        p["fuse%d.pointwise.weight" % i] = torch.randn(cfg["decoder_channels"], cin, 1, 1, generator=g) * (2.0 / cin) ** 0.5
        p.update(bn_keys("fuse%d.pointwise_bn" % i, cfg["decoder_channels"], g))
        c = cfg["decoder_channels"]
    return p


def semantic_decoder(cfg, p, high, lows, train, buffers):
    def bn(x, name):
        rm, rv = buffers[name + ".running_mean"], buffers[name + ".running_var"]
        return F.batch_norm(x, rm, rv, p[name + ".weight"], p[name + ".bias"], training=train, momentum=0.1, eps=1e-5)

    def conv_bn_relu(x, name, dilation=1):
        w = p[name + ".0.weight"]
        pad = dilation * (w.shape[-1] // 2)
        return bn(F.conv2d(x, w, padding=pad, dilation=dilation), name + ".1").relu()

    branches = [conv_bn_relu(high, "aspp.conv")]
    for i, r in enumerate(cfg["rates"]):
        branches.append(conv_bn_relu(high, "aspp.atrous%d" % (i + 1), r))
    pooled = conv_bn_relu(high.mean(dim=(2, 3), keepdim=True), "aspp.pool")
    branches.append(pooled.expand(-1, -1, high.shape[2], high.shape[3]))
    x = conv_bn_relu(torch.cat(branches, 1), "aspp.project")
    for i, low in enumerate(lows):
        low = conv_bn_relu(low, "low%d" % i)
        x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([x, low], 1)
        x = bn(F.conv2d(x, p["fuse%d.depthwise.weight" % i], padding=2, groups=x.shape[1]), "fuse%d.depthwise_bn" % i).relu()
        x = bn(F.conv2d(x, p["fuse%d.pointwise.weight" % i]), "fuse%d.pointwise_bn" % i).relu()
    return x


def make_semantic():
    cfg = SEM
    g = torch.Generator().manual_seed(21)
    params32 = semantic_params(cfg, g)
    torch.save(params32, os.path.join(HERE, "max_deeplab_semantic.pth"))
    b, s = cfg["batch"], cfg["sizes"]
    high = torch.randn(b, cfg["high_channels"], s[0], s[0], generator=g).relu()
    low0 = torch.randn(b, cfg["low_channels"][0], s[1], s[1], generator=g).relu()
    low1 = torch.randn(b, cfg["low_channels"][1], s[2], s[2], generator=g).relu()
    go = torch.randn(b, cfg["decoder_channels"], s[2], s[2], generator=g)
    doc = {"config": cfg, "checkpoint": "max_deeplab_semantic.pth", "torch": torch.__version__,
           "inputs": {"high": tj(high), "low0": tj(low0), "low1": tj(low1), "grad_out": tj(go)}}
    for mode in ("train", "eval"):
        params = {k: v.double().requires_grad_(True) for k, v in params32.items() if v.is_floating_point() and "running" not in k}
        buffers = {k: v.double().clone() for k, v in params32.items() if "running" in k}
        xs = [t.double().requires_grad_(True) for t in (high, low0, low1)]
        out = semantic_decoder(cfg, params, xs[0], xs[1:], mode == "train", buffers)
        (out * go.double()).sum().backward()
        grads = {"high": tj(xs[0].grad), "low0": tj(xs[1].grad), "low1": tj(xs[2].grad)}
        if mode == "train":
            grads.update({k: tj(v.grad) for k, v in params.items()})
        doc[mode] = {"out": tj(out), "grads": grads}
    with open(os.path.join(HERE, "max_deeplab_semantic.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


# ---------------------------------------------------------------- the losses (float64)

LOSS = dict(batch=3, slots=7, classes=5, height=6, width=8, dim=4, sem_height=3, sem_width=4,
            alpha=0.75, temperature=0.3, pq_weight=3.0, mask_id_weight=0.3, instance_weight=1.0, semantic_weight=1.0)


def make_targets(g, cfg):
    h, w, hs, ws, C = cfg["height"], cfg["width"], cfg["sem_height"], cfg["sem_width"], cfg["classes"]
    targets = []
    for b, k in enumerate((4, 9, 0)):  # fewer masks than slots, more masks than slots (rectangular the other way), none
        if k == 0:
            ids = torch.full((h * w,), -1, dtype=torch.int64)
            classes = torch.zeros(0, dtype=torch.int64)
        else:
            while True:
                ids = torch.randint(-1, k, (h * w,), generator=g)
                if all((ids == j).any() for j in range(k)):
                    break
            classes = torch.randint(0, C, (k,), generator=g)
        sem = torch.randint(-1, C, (hs * ws,), generator=g)
        if k == 0:
            sem[:] = -1
        targets.append({"mask_ids": ids, "mask_classes": classes, "semantic_labels": sem})
    return targets


def loss_terms(mask_logits, class_logits, feats, sem_logits, targets, cfg):
    B, N, h, w = mask_logits.shape
    C = class_logits.shape[2] - 1
    a, tau = cfg["alpha"], cfg["temperature"]
    sums = {k: 0 for k in ("loss_pq_class", "loss_pq_mask", "loss_mask_id", "loss_instance_discrimination", "loss_semantic")}
    matches = []
    for b in range(B):
        t = targets[b]
        ids, cls, sem = t["mask_ids"], t["mask_classes"], t["semantic_labels"]
        K = len(cls)
        m = mask_logits[b].reshape(N, h * w).softmax(0)
        logm = mask_logits[b].reshape(N, h * w).log_softmax(0)
        p = class_logits[b].softmax(-1)
        logp = class_logits[b].log_softmax(-1)
        valid = (ids >= 0).double()
        # semantic cross-entropy over labelled pixels
        sl = sem_logits[b].reshape(C, -1).log_softmax(0)
        lab = sem >= 0
        if lab.any():
            sums["loss_semantic"] = sums["loss_semantic"] + cfg["semantic_weight"] * -(sl[sem[lab], torch.nonzero(lab)[:, 0]]).mean()
        if K == 0:
            sums["loss_pq_class"] = sums["loss_pq_class"] + cfg["pq_weight"] * (1 - a) * -(logp[:, C]).sum() / N
            matches.append({"gt": [], "slot": []})
            continue
        y = torch.stack([(ids == k).double() for k in range(K)])          # [K, P]
        mv = m * valid
        # matching on constants
        with torch.no_grad():
            dice = torch.zeros(K, N, dtype=torch.float64)
            for k in range(K):
                for i in range(N):
                    dice[k, i] = (y[k] * mv[i]).sum() / ((y[k].sum() + mv[i].sum()) / 2 + 1e-5)
            cp = torch.stack([p[:, cls[k]] for k in range(K)])            # [K, N]
            cost = -(dice * cp)
        rows, cols = linear_sum_assignment(cost.numpy())
        matches.append({"gt": rows.tolist(), "slot": cols.tolist()})
        # class term
        ce = 0
        matched = {int(c): int(r) for r, c in zip(rows, cols)}
        for i in range(N):
            if i in matched:
                k = matched[i]
                ce = ce + a * dice[k, i] * -logp[i, cls[k]]
            else:
                ce = ce + (1 - a) * -logp[i, C]
        sums["loss_pq_class"] = sums["loss_pq_class"] + cfg["pq_weight"] * ce / N
        # mask term
        mt = 0
        for r, c in zip(rows, cols):
            inter = (mv[c] * y[r]).sum()
            mt = mt + cp[r, c] * (1 - (2 * inter + 1) / (mv[c].sum() + y[r].sum() + 1))
        sums["loss_pq_mask"] = sums["loss_pq_mask"] + cfg["pq_weight"] * a * mt / N
        # mask-ID cross-entropy over pixels of matched masks
        slot_of = {int(r): int(c) for r, c in zip(rows, cols)}
        terms = [-logm[slot_of[int(ids[q])], q] for q in range(h * w) if int(ids[q]) >= 0 and int(ids[q]) in slot_of]
        sums["loss_mask_id"] = sums["loss_mask_id"] + cfg["mask_id_weight"] * torch.stack(terms).mean()
        # instance discrimination over non-void pixels, against all K masks
        gfeat = feats[b].reshape(feats.shape[1], -1)                      # [D, P]
        mean = torch.stack([(gfeat * y[k]).sum(1) / max(float(y[k].sum()), 1.0) for k in range(K)], 1)  # [D, K]
        mean = mean / mean.pow(2).sum(0, keepdim=True).clamp_min(1e-12).sqrt()
        logits = (mean.t() @ gfeat) / tau                                  # [K, P]
        ls = logits.log_softmax(0)
        inst = [-ls[int(ids[q]), q] for q in range(h * w) if int(ids[q]) >= 0]
        sums["loss_instance_discrimination"] = sums["loss_instance_discrimination"] + cfg["instance_weight"] * torch.stack(inst).mean()
    return {k: v / B for k, v in sums.items()}, matches


def make_loss():
    cfg = LOSS
    g = torch.Generator().manual_seed(151)
    B, N, C, h, w, D = cfg["batch"], cfg["slots"], cfg["classes"], cfg["height"], cfg["width"], cfg["dim"]
    mask_logits = (torch.randn(B, N, h, w, generator=g, dtype=torch.float64) * 2)
    class_logits = (torch.randn(B, N, C + 1, generator=g, dtype=torch.float64) * 2)
    feats = torch.randn(B, D, h, w, generator=g, dtype=torch.float64)
    feats = feats / feats.norm(dim=1, keepdim=True)
    sem_logits = torch.randn(B, C, cfg["sem_height"], cfg["sem_width"], generator=g, dtype=torch.float64)
    targets = make_targets(g, cfg)
    inputs = {"mask_logits": mask_logits, "class_logits": class_logits, "pixel_features": feats, "semantic_logits": sem_logits}
    depends = {"loss_pq_class": "class_logits", "loss_pq_mask": "mask_logits", "loss_mask_id": "mask_logits",
               "loss_instance_discrimination": "pixel_features", "loss_semantic": "semantic_logits"}
    terms, matches = None, None
    grads = {}
    for name, wrt in depends.items():
        xs = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        terms, matches = loss_terms(xs["mask_logits"], xs["class_logits"], xs["pixel_features"], xs["semantic_logits"], targets, cfg)
        terms[name].backward()
        grads[name] = tj(xs[wrt].grad, 17)
        for k, v in xs.items():  # the weights are constants: no other input gets a gradient from this term
            if k != wrt and v.grad is not None:
                assert v.grad.abs().max() == 0, (name, k)
    doc = {"config": cfg, "torch": torch.__version__,
           "inputs": {k: tj(v, 17) for k, v in inputs.items()},
           "targets": [{k: tj(v) for k, v in t.items()} for t in targets],
           "matches": matches,
           "terms": {k: float(v) for k, v in terms.items()},
           "grads": grads}
    with open(os.path.join(HERE, "max_deeplab_loss.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    make_block()
    make_semantic()
    make_loss()
