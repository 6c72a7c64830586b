#!/usr/bin/env python3
"""Authoring-time generator of the evaluation goldens (the C# tests never run Python).

pycocotools and panopticapi are not installable here, so this is a small, independent Python restatement
of their rules (pycocotools cocoeval.py / mask.py / maskApi.c, panopticapi evaluation.py) written from
reading those sources. It builds random but fixed (seeded) scenarios, evaluates them with these rules and
writes the inputs together with the expected numbers as JSON next to this file:

    coco_bbox.json, coco_segm.json, rle_cases.json, numpy_mean.json, panoptic.json

Run:  /usr/bin/python3 make_eval_goldens.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------- RLE (maskApi.c)

def rle_encode(mask_colmajor):
    """mask: 1-D array in column-major order -> counts list (starting with a run of 0s)."""
    cnts, p, c = [], 0, 0
    for v in mask_colmajor:
        v = 1 if v else 0
        if v != p:
            cnts.append(c)
            c = 0
            p = v
        c += 1
    cnts.append(c)
    return cnts


def rle_decode(cnts, n):
    out = np.zeros(n, dtype=np.uint8)
    pos, v = 0, 0
    for c in cnts:
        if v:
            out[pos:pos + c] = 1
        pos += c
        v = 1 - v
    return out


def rle_area(cnts):
    return int(sum(cnts[1::2]))


def rle_to_bbox(cnts, h, w):
    m = (len(cnts) // 2) * 2
    if m == 0:
        return [0.0, 0.0, 0.0, 0.0]
    xs, ys, xe, ye, cc, xp = w, h, 0, 0, 0, 0
    for j in range(m):
        cc += cnts[j]
        t = cc - j % 2
        y = t % h
        x = (t - y) // h
        if j % 2 == 0:
            xp = x
        elif xp < x:
            ys, ye = 0, h - 1
        xs, xe, ys, ye = min(xs, x), max(xe, x), min(ys, y), max(ye, y)
    return [float(xs), float(ys), float(xe - xs + 1), float(ye - ys + 1)]


def rle_to_string(cnts):
    s = []
    for i in range(len(cnts)):
        x = int(cnts[i])
        if i > 2:
            x -= int(cnts[i - 2])
        more = True
        while more:
            c = x & 0x1f
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            s.append(chr(c + 48))
    return ''.join(s)


def rle_fr_string(s):
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x & 0xffffffff)
    return cnts


def c_int(v):
    """C (int) cast of a double: truncation toward zero."""
    return int(v)


def rle_fr_poly(xy, h, w):
    k = len(xy) // 2
    scale = 5.0
    x = [c_int(scale * xy[2 * j] + .5) for j in range(k)]
    y = [c_int(scale * xy[2 * j + 1] + .5) for j in range(k)]
    if k == 0:
        return [h * w]
    x.append(x[0])
    y.append(y[0])
    u, v = [], []
    for j in range(k):
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe = xe, xs
            ys, ye = ye, ys
        s = (ye - ys) / dx if dx >= dy else (xe - xs) / dy
        if dx >= dy:
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(c_int(ys + s * t + .5))
        else:
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(c_int(xs + s * t + .5))
    bx, by = [], []
    for j in range(1, len(u)):
        if u[j] == u[j - 1]:
            continue
        xd = float(u[j] if u[j] < u[j - 1] else u[j] - 1)
        xd = (xd + .5) / scale - .5
        if np.floor(xd) != xd or xd < 0 or xd > w - 1:
            continue
        yd = float(v[j] if v[j] < v[j - 1] else v[j - 1])
        yd = (yd + .5) / scale - .5
        if yd < 0:
            yd = 0
        elif yd > h:
            yd = h
        yd = np.ceil(yd)
        bx.append(int(xd))
        by.append(int(yd))
    a = [bx[j] * h + by[j] for j in range(len(bx))]
    a.append(h * w)
    a.sort()
    prev = 0
    for j in range(len(a)):
        t = a[j]
        a[j] -= prev
        prev = t
    b = [a[0]]
    j = 1
    while j < len(a):
        if a[j] > 0:
            b.append(a[j])
            j += 1
        else:
            j += 1
            if j < len(a):
                b[-1] += a[j]
                j += 1
    return b


def rle_fr_bbox(bb, h, w):
    xs, ys = bb[0], bb[1]
    xe, ye = xs + bb[2], ys + bb[3]
    return rle_fr_poly([xs, ys, xs, ye, xe, ye, xe, ys], h, w)


def rle_merge(rles, intersect=False):
    if len(rles) == 0:
        return []
    cnts = list(rles[0])
    for B in rles[1:]:
        A = cnts
        out = []
        ca, cb = A[0], B[0]
        v = va = vb = False
        a = b = 1
        cc, ct = 0, 1
        while ct > 0:
            c = min(ca, cb)
            cc += c
            ct = 0
            ca -= c
            if not ca and a < len(A):
                ca = A[a]
                a += 1
                va = not va
            ct += ca
            cb -= c
            if not cb and b < len(B):
                cb = B[b]
                b += 1
                vb = not vb
            ct += cb
            vp = v
            v = (va and vb) if intersect else (va or vb)
            if v != vp or ct == 0:
                out.append(cc)
                cc = 0
        cnts = out
    return cnts


def bb_iou(dt, gt, iscrowd):
    o = np.zeros((len(dt), len(gt)))
    for g, G in enumerate(gt):
        ga = G[2] * G[3]
        for d, D in enumerate(dt):
            da = D[2] * D[3]
            w = min(D[2] + D[0], G[2] + G[0]) - max(D[0], G[0])
            if w <= 0:
                continue
            h = min(D[3] + D[1], G[3] + G[1]) - max(D[1], G[1])
            if h <= 0:
                continue
            i = w * h
            u = da if iscrowd[g] else da + ga - i
            o[d, g] = i / u
    return o


def rle_iou(dt, gt, iscrowd, h, w):
    """dt, gt: lists of counts of one image size."""
    o = bb_iou([rle_to_bbox(c, h, w) for c in dt], [rle_to_bbox(c, h, w) for c in gt], iscrowd)
    n = h * w
    for g in range(len(gt)):
        gm = rle_decode(gt[g], n).astype(bool)
        for d in range(len(dt)):
            if not o[d, g] > 0:
                continue
            dm = rle_decode(dt[d], n).astype(bool)
            i = int(np.count_nonzero(dm & gm))
            u = int(np.count_nonzero(dm | gm))
            if i == 0:
                u = 1
            elif iscrowd[g]:
                u = rle_area(dt[d])
            o[d, g] = i / u
    return o


# ----------------------------------------------------------------------------------------------- COCOeval

IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = [1, 10, 100]
AREA_RNG = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
AREA_LBL = ['all', 'small', 'medium', 'large']


def seg_to_counts(seg, h, w):
    if isinstance(seg, list):
        if len(seg) > 0 and len(seg[0]) == 4:
            parts = [rle_fr_bbox(p, h, w) for p in seg]
        else:
            parts = [rle_fr_poly(p, h, w) for p in seg]
        return rle_merge(parts)
    if isinstance(seg['counts'], list):
        return list(seg['counts'])
    return rle_fr_string(seg['counts'])


def coco_eval(gt, dets, iou_type):
    imgs = {im['id']: im for im in gt['images']}
    img_ids = sorted(imgs)
    cat_ids = sorted(c['id'] for c in gt['categories'])
    # loadRes
    res = []
    for i, d in enumerate(dets):
        d = dict(d)
        assert d['image_id'] in imgs
        im = imgs[d['image_id']]
        if 'bbox' in d and d['bbox'] != []:
            bb = d['bbox']
            x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
            if 'segmentation' not in d:
                d['segmentation'] = [[x1, y1, x1, y2, x2, y2, x2, y1]]
            d['area'] = bb[2] * bb[3]
        else:
            cn = seg_to_counts(d['segmentation'], im['height'], im['width'])
            d['area'] = rle_area(cn)
            d['bbox'] = rle_to_bbox(cn, im['height'], im['width'])
        d['id'] = i + 1
        d['iscrowd'] = 0
        res.append(d)
    # _prepare
    gts, dts = {}, {}
    for g in gt['annotations']:
        if g['image_id'] not in imgs or g['category_id'] not in cat_ids:
            continue
        g = dict(g)
        g['ignore'] = bool(g.get('iscrowd', 0))
        if iou_type == 'segm':
            im = imgs[g['image_id']]
            g['counts'] = seg_to_counts(g['segmentation'], im['height'], im['width'])
        gts.setdefault((g['image_id'], g['category_id']), []).append(g)
    for d in res:
        if d['category_id'] not in cat_ids:
            continue
        if iou_type == 'segm':
            im = imgs[d['image_id']]
            d['counts'] = seg_to_counts(d['segmentation'], im['height'], im['width'])
        dts.setdefault((d['image_id'], d['category_id']), []).append(d)

    def compute_iou(img_id, cat_id):
        g = gts.get((img_id, cat_id), [])
        d = dts.get((img_id, cat_id), [])
        if len(g) == 0 and len(d) == 0:
            return []
        inds = np.argsort([-x['score'] for x in d], kind='mergesort')
        d = [d[i] for i in inds][:MAX_DETS[-1]]
        if len(d) == 0 or len(g) == 0:
            return []
        crowd = [int(x.get('iscrowd', 0)) for x in g]
        if iou_type == 'segm':
            im = imgs[img_id]
            return rle_iou([x['counts'] for x in d], [x['counts'] for x in g], crowd, im['height'], im['width'])
        return bb_iou([x['bbox'] for x in d], [x['bbox'] for x in g], crowd)

    ious = {(i, c): compute_iou(i, c) for i in img_ids for c in cat_ids}

    def evaluate_img(img_id, cat_id, a_rng, max_det):
        g = gts.get((img_id, cat_id), [])
        d = dts.get((img_id, cat_id), [])
        if len(g) == 0 and len(d) == 0:
            return None
        g_ign = [1 if (x['ignore'] or x['area'] < a_rng[0] or x['area'] > a_rng[1]) else 0 for x in g]
        gtind = np.argsort(g_ign, kind='mergesort')
        g = [g[i] for i in gtind]
        g_ign = [g_ign[i] for i in gtind]
        dtind = np.argsort([-x['score'] for x in d], kind='mergesort')
        d = [d[i] for i in dtind[0:max_det]]
        iscrowd = [int(x.get('iscrowd', 0)) for x in g]
        io = ious[img_id, cat_id]
        io = io[:, gtind] if len(io) > 0 else io
        T, G, D = len(IOU_THRS), len(g), len(d)
        gtm = np.zeros((T, G))
        dtm = np.zeros((T, D))
        gt_ig = np.array(g_ign)
        dt_ig = np.zeros((T, D))
        if not len(io) == 0:
            for tind, t in enumerate(IOU_THRS):
                for dind, dd in enumerate(d):
                    iou = min([t, 1 - 1e-10])
                    m = -1
                    for gind, gg in enumerate(g):
                        if gtm[tind, gind] > 0 and not iscrowd[gind]:
                            continue
                        if m > -1 and gt_ig[m] == 0 and gt_ig[gind] == 1:
                            break
                        if io[dind, gind] < iou:
                            continue
                        iou = io[dind, gind]
                        m = gind
                    if m == -1:
                        continue
                    dt_ig[tind, dind] = gt_ig[m]
                    dtm[tind, dind] = g[m]['id']
                    gtm[tind, m] = dd['id']
        a = np.array([x['area'] < a_rng[0] or x['area'] > a_rng[1] for x in d]).reshape((1, len(d)))
        dt_ig = np.logical_or(dt_ig, np.logical_and(dtm == 0, np.repeat(a, T, 0)))
        return {'dtIds': [x['id'] for x in d], 'gtIds': [x['id'] for x in g], 'dtMatches': dtm,
                'gtMatches': gtm, 'dtScores': [x['score'] for x in d], 'gtIgnore': gt_ig, 'dtIgnore': dt_ig}

    eval_imgs = [evaluate_img(i, c, a, MAX_DETS[-1]) for c in cat_ids for a in AREA_RNG for i in img_ids]

    T, R, K, A, M = len(IOU_THRS), len(REC_THRS), len(cat_ids), len(AREA_RNG), len(MAX_DETS)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    I0, A0 = len(img_ids), len(AREA_RNG)
    for k in range(K):
        Nk = k * A0 * I0
        for a in range(A):
            Na = a * I0
            for m, max_det in enumerate(MAX_DETS):
                E = [eval_imgs[Nk + Na + i] for i in range(I0)]
                E = [e for e in E if e is not None]
                if len(E) == 0:
                    continue
                dt_scores = np.concatenate([e['dtScores'][0:max_det] for e in E])
                inds = np.argsort(-dt_scores, kind='mergesort')
                dtm = np.concatenate([e['dtMatches'][:, 0:max_det] for e in E], axis=1)[:, inds]
                dt_ig = np.concatenate([e['dtIgnore'][:, 0:max_det] for e in E], axis=1)[:, inds]
                gt_ig = np.concatenate([e['gtIgnore'] for e in E])
                npig = np.count_nonzero(gt_ig == 0)
                if npig == 0:
                    continue
                tps = np.logical_and(dtm, np.logical_not(dt_ig))
                fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
                tp_sum = np.cumsum(tps, axis=1).astype(dtype=np.float64)
                fp_sum = np.cumsum(fps, axis=1).astype(dtype=np.float64)
                for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                    tp = np.array(tp)
                    fp = np.array(fp)
                    nd = len(tp)
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    q = np.zeros((R,))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    pr = pr.tolist()
                    q = q.tolist()
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    rinds = np.searchsorted(rc, REC_THRS, side='left')
                    try:
                        for ri, pi in enumerate(rinds):
                            q[ri] = pr[pi]
                    except IndexError:
                        pass
                    precision[t, :, k, a, m] = np.array(q)

    def summarize(ap=1, iou_thr=None, area_rng='all', max_dets=100):
        aind = [i for i, x in enumerate(AREA_LBL) if x == area_rng]
        mind = [i for i, x in enumerate(MAX_DETS) if x == max_dets]
        if ap == 1:
            s = precision
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRS)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = recall
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRS)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    stats = [summarize(1), summarize(1, .5, max_dets=100), summarize(1, .75, max_dets=100),
             summarize(1, area_rng='small'), summarize(1, area_rng='medium'), summarize(1, area_rng='large'),
             summarize(0, max_dets=1), summarize(0, max_dets=10), summarize(0, max_dets=100),
             summarize(0, area_rng='small'), summarize(0, area_rng='medium'), summarize(0, area_rng='large')]
    per_cat = {}
    for k, c in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_cat[str(c)] = float(np.mean(p)) if p.size else -1.0
    lines = []
    specs = [(1, None, 'all', 100), (1, .5, 'all', 100), (1, .75, 'all', 100), (1, None, 'small', 100),
             (1, None, 'medium', 100), (1, None, 'large', 100), (0, None, 'all', 1), (0, None, 'all', 10),
             (0, None, 'all', 100), (0, None, 'small', 100), (0, None, 'medium', 100), (0, None, 'large', 100)]
    for (ap, thr, area, md), v in zip(specs, stats):
        i_str = ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
        iou_str = '{:0.2f}:{:0.2f}'.format(IOU_THRS[0], IOU_THRS[-1]) if thr is None else '{:0.2f}'.format(thr)
        lines.append(i_str.format('Average Precision' if ap == 1 else 'Average Recall', '(AP)' if ap == 1 else '(AR)',
                                  iou_str, area, md, v))
    return {
        'stats': stats,
        'per_category_ap': per_cat,
        'recall': recall.reshape(-1).tolist(),
        'precision_sum_by_tkam': precision.sum(axis=1).reshape(-1).tolist(),
        'precision_t0_k0_a0_m2': precision[0, :, 0, 0, 2].tolist(),
        'summary': '\n'.join(lines) + '\n',
    }


# ----------------------------------------------------------------------------------------------- scenarios

def rnd_box(rng, W, H, smin, smax):
    w = float(rng.integers(smin, smax + 1))
    h = float(rng.integers(smin, smax + 1))
    x = float(rng.integers(0, max(1, W - int(w))))
    y = float(rng.integers(0, max(1, H - int(h))))
    return [x, y, w, h]


def jitter(rng, b, s):
    return [round(b[0] + rng.uniform(-s, s), 2), round(b[1] + rng.uniform(-s, s), 2),
            round(max(1.0, b[2] + rng.uniform(-s, s)), 2), round(max(1.0, b[3] + rng.uniform(-s, s)), 2)]


def make_bbox_scenario():
    rng = np.random.default_rng(1234)
    images = [{'id': i, 'height': 480, 'width': 640} for i in [3, 1, 7, 2, 5, 4]]
    cats = [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}, {'id': 5, 'name': 'c'}, {'id': 9, 'name': 'nogt'}]
    anns, dets = [], []
    aid = 1
    for im in images:
        for c in [1, 2, 5]:
            n = int(rng.integers(0, 5))
            for _ in range(n):
                kind = rng.integers(0, 3)
                smin, smax = [(8, 31), (33, 95), (97, 200)][kind]
                b = rnd_box(rng, 640, 480, smin, smax)
                crowd = 1 if rng.random() < 0.12 else 0
                anns.append({'id': aid, 'image_id': im['id'], 'category_id': c, 'bbox': b,
                             'area': round(b[2] * b[3] * rng.uniform(0.6, 1.0), 1), 'iscrowd': crowd})
                aid += 1
                for _ in range(int(rng.integers(0, 3))):
                    dets.append({'image_id': im['id'], 'category_id': c, 'bbox': jitter(rng, b, 0.2 * min(b[2], b[3])),
                                 'score': round(float(rng.uniform(0.05, 1.0)), 2)})
            for _ in range(int(rng.integers(0, 4))):
                dets.append({'image_id': im['id'], 'category_id': c, 'bbox': rnd_box(rng, 640, 480, 10, 120),
                             'score': round(float(rng.uniform(0.0, 0.8)), 2)})
    # one crowded image beyond maxDets=10 and 100 for category 1
    base = rnd_box(rng, 640, 480, 60, 90)
    anns.append({'id': aid, 'image_id': 4, 'category_id': 1, 'bbox': base, 'area': base[2] * base[3], 'iscrowd': 0})
    aid += 1
    for i in range(105):
        dets.append({'image_id': 4, 'category_id': 1, 'bbox': jitter(rng, base, 6.0),
                     'score': round(float(rng.uniform(0.0, 1.0)), 1)})
    # a category absent from the ground truth
    dets.append({'image_id': 1, 'category_id': 9, 'bbox': [10, 10, 20, 20], 'score': 0.9})
    # a detection of a category not in the ground truth categories at all (dropped)
    dets.append({'image_id': 1, 'category_id': 77, 'bbox': [10, 10, 20, 20], 'score': 0.9})
    gt = {'images': images, 'categories': cats, 'annotations': anns}
    return {'gt': gt, 'dets': dets, 'expected': coco_eval(gt, dets, 'bbox')}


def random_polygon(rng, W, H, r0, r1):
    cx, cy = rng.uniform(r1, W - r1), rng.uniform(r1, H - r1)
    n = int(rng.integers(3, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(r0, r1, n)
    pts = []
    for a, r in zip(ang, rad):
        pts += [round(float(cx + r * np.cos(a)), 2), round(float(cy + r * np.sin(a)), 2)]
    return pts


def make_segm_scenario():
    rng = np.random.default_rng(99)
    H, W = 80, 100
    images = [{'id': i, 'height': H, 'width': W} for i in [1, 2, 3, 4]]
    cats = [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}]
    anns, dets = [], []
    aid = 1
    for im in images:
        for c in [1, 2]:
            for _ in range(int(rng.integers(1, 4))):
                polys = [random_polygon(rng, W, H, *((3, 14) if rng.random() < 0.6 else (24, 34)))]
                if rng.random() < 0.3:
                    polys.append(random_polygon(rng, W, H, 2, 6))
                cn = seg_to_counts(polys, H, W)
                crowd = 1 if rng.random() < 0.15 else 0
                if crowd:
                    seg = {'counts': cn, 'size': [H, W]}  # uncompressed RLE, as COCO crowd annotations
                elif rng.random() < 0.3:
                    seg = {'counts': rle_to_string(cn), 'size': [H, W]}
                else:
                    seg = polys
                anns.append({'id': aid, 'image_id': im['id'], 'category_id': c, 'segmentation': seg,
                             'area': float(rle_area(cn)), 'bbox': rle_to_bbox(cn, H, W), 'iscrowd': crowd})
                aid += 1
                # detections: the mask shifted / dilated a little, as compressed RLE strings
                m = rle_decode(cn, H * W).reshape((W, H)).T  # row-major view [H, W]
                for _ in range(int(rng.integers(0, 3))):
                    dx, dy = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
                    sm = np.zeros_like(m)
                    ys, xs = np.nonzero(m)
                    ys2, xs2 = np.clip(ys + dy, 0, H - 1), np.clip(xs + dx, 0, W - 1)
                    sm[ys2, xs2] = 1
                    dc = rle_encode(sm.T.reshape(-1))
                    dets.append({'image_id': im['id'], 'category_id': c,
                                 'segmentation': {'counts': rle_to_string(dc), 'size': [H, W]},
                                 'score': round(float(rng.uniform(0.1, 1.0)), 2)})
            for _ in range(int(rng.integers(0, 3))):
                poly = random_polygon(rng, W, H, 3, 10)
                dc = seg_to_counts([poly], H, W)
                dets.append({'image_id': im['id'], 'category_id': c,
                             'segmentation': {'counts': rle_to_string(dc), 'size': [H, W]},
                             'score': round(float(rng.uniform(0.0, 0.7)), 2)})
    gt = {'images': images, 'categories': cats, 'annotations': anns}
    return {'gt': gt, 'dets': dets, 'expected': coco_eval(gt, dets, 'segm')}


def make_rle_cases():
    rng = np.random.default_rng(7)
    cases = {'masks': [], 'polygons': [], 'merges': [], 'ious': []}
    for (h, w) in [(1, 1), (3, 4), (7, 5), (20, 30), (64, 64)]:
        for density in [0.0, 0.3, 0.9, 1.0]:
            m = (rng.random(h * w) < density).astype(np.uint8)  # column-major flat
            cn = rle_encode(m)
            s = rle_to_string(cn)
            assert rle_fr_string(s) == cn
            cases['masks'].append({'h': h, 'w': w, 'mask_colmajor': m.tolist(), 'counts': cn, 'string': s,
                                   'area': rle_area(cn), 'bbox': rle_to_bbox(cn, h, w)})
    polys = [
        ([2.0, 2.0, 2.0, 6.0, 6.0, 6.0, 6.0, 2.0], 10, 10),
        ([1.5, 1.5, 8.5, 1.5, 1.5, 8.5], 10, 10),
        ([0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0], 10, 10),
        ([-3.0, -2.0, 5.3, 1.1, 12.0, 9.7, 2.2, 13.0], 10, 12),
        ([4.25, 0.75, 7.6, 4.4, 4.5, 8.1, 1.2, 4.49], 9, 11),
    ]
    for _ in range(6):
        polys.append((random_polygon(rng, 40, 30, 2, 12), 30, 40))
    for xy, h, w in polys:
        cn = rle_fr_poly(xy, h, w)
        cases['polygons'].append({'xy': xy, 'h': h, 'w': w, 'counts': cn, 'string': rle_to_string(cn)})
    for bb in ([1.0, 2.0, 3.0, 4.0], [0.4, 0.6, 5.2, 2.3]):
        cn = rle_fr_bbox(bb, 8, 9)
        cases['polygons'].append({'bbox': bb, 'h': 8, 'w': 9, 'counts': cn, 'string': rle_to_string(cn)})
    for _ in range(4):
        h, w = 12, 15
        ms = [rle_encode((rng.random(h * w) < 0.4).astype(np.uint8)) for _ in range(3)]
        cases['merges'].append({'h': h, 'w': w, 'inputs': ms, 'union': rle_merge(ms, False),
                                'intersection': rle_merge(ms, True)})
    for _ in range(3):
        h, w = 16, 16
        dt = [rle_fr_poly(random_polygon(rng, w, h, 2, 6), h, w) for _ in range(3)]
        gt = [rle_fr_poly(random_polygon(rng, w, h, 2, 6), h, w) for _ in range(2)]
        crowd = [0, 1]
        cases['ious'].append({'h': h, 'w': w, 'dt': dt, 'gt': gt, 'iscrowd': crowd,
                              'iou': rle_iou(dt, gt, crowd, h, w).tolist()})
    return cases


def mean_values(n):
    """Values both sides can rebuild bit for bit: exact integer ratios times 1e-3 / 1 / 1e3."""
    scales = [1e-3, 1.0, 1e3]
    return np.array([((i * 7919) % 1009) / 1013.0 * scales[i % 3] for i in range(n)])


def make_mean_cases():
    out = []
    for n in [1, 5, 8, 9, 17, 128, 129, 1000, 4040, 30300, 80800]:
        out.append({'n': n, 'mean': float(np.mean(mean_values(n))), 'naive': float(sum(mean_values(n).tolist()) / n)})
    return out


# ----------------------------------------------------------------------------------------------- panoptic

OFFSET = 256 * 256 * 256
VOID = 0


def pq_image(pan_gt, gt_segments, pan_pred, pred_segments, categories, stat):
    gt_segms = {el['id']: dict(el) for el in gt_segments}
    pred_segms = {el['id']: dict(el) for el in pred_segments}
    labels, cnts = np.unique(pan_pred, return_counts=True)
    for label, c in zip(labels, cnts):
        if label not in pred_segms:
            assert label == VOID
            continue
        pred_segms[label]['area'] = int(c)
    pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
    gt_pred_map = {}
    labels, cnts = np.unique(pan_gt_pred, return_counts=True)
    for label, inter in zip(labels, cnts):
        gt_pred_map[(int(label // OFFSET), int(label % OFFSET))] = int(inter)
    gt_matched, pred_matched = set(), set()
    for (gl, pl), inter in gt_pred_map.items():
        if gl not in gt_segms or pl not in pred_segms:
            continue
        if gt_segms[gl]['iscrowd'] == 1:
            continue
        if gt_segms[gl]['category_id'] != pred_segms[pl]['category_id']:
            continue
        union = pred_segms[pl]['area'] + gt_segms[gl]['area'] - inter - gt_pred_map.get((VOID, pl), 0)
        iou = inter / union
        if iou > 0.5:
            s = stat.setdefault(gt_segms[gl]['category_id'], [0.0, 0, 0, 0])
            s[1] += 1
            s[0] += iou
            gt_matched.add(gl)
            pred_matched.add(pl)
    crowd = {}
    for gl, gi in gt_segms.items():
        if gl in gt_matched:
            continue
        if gi['iscrowd'] == 1:
            crowd[gi['category_id']] = gl
            continue
        stat.setdefault(gi['category_id'], [0.0, 0, 0, 0])[3] += 1
    for pl, pi in pred_segms.items():
        if pl in pred_matched:
            continue
        inter = gt_pred_map.get((VOID, pl), 0)
        if pi['category_id'] in crowd:
            inter += gt_pred_map.get((crowd[pi['category_id']], pl), 0)
        if inter / pi['area'] > 0.5:
            continue
        stat.setdefault(pi['category_id'], [0.0, 0, 0, 0])[2] += 1


def pq_average(stat, categories, isthing):
    pq, sq, rq, n = 0, 0, 0, 0
    per = {}
    for c in categories:
        if isthing is not None and (c['isthing'] == 1) != isthing:
            continue
        iou, tp, fp, fn = stat.get(c['id'], [0.0, 0, 0, 0])
        if tp + fp + fn == 0:
            per[str(c['id'])] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
            continue
        n += 1
        pqc = iou / (tp + 0.5 * fp + 0.5 * fn)
        sqc = iou / tp if tp != 0 else 0
        rqc = tp / (tp + 0.5 * fp + 0.5 * fn)
        per[str(c['id'])] = {'pq': pqc, 'sq': sqc, 'rq': rqc}
        pq += pqc
        sq += sqc
        rq += rqc
    return {'pq': pq / n, 'sq': sq / n, 'rq': rq / n, 'n': n}, per


def make_panoptic_scenario():
    rng = np.random.default_rng(2024)
    categories = [{'id': 1, 'isthing': 1}, {'id': 2, 'isthing': 1}, {'id': 3, 'isthing': 1},
                  {'id': 10, 'isthing': 0}, {'id': 11, 'isthing': 0}, {'id': 12, 'isthing': 0}]
    images = []
    stat = {}
    H, W = 24, 32
    for im in range(5):
        # ground truth: stuff background split in bands, things as rectangles, a void strip, maybe a crowd
        gt = np.zeros((H, W), dtype=np.int64)
        segs = []
        sid = 1
        band = int(rng.integers(8, 16))
        for (y0, y1, cat) in [(0, band, 10), (band, H, int(rng.choice([11, 12])))]:
            gt[y0:y1, :] = sid
            segs.append({'id': sid, 'category_id': cat, 'iscrowd': 0})
            sid += 1
        for _ in range(int(rng.integers(1, 5))):
            x0, y0 = int(rng.integers(0, W - 6)), int(rng.integers(0, H - 6))
            w, h = int(rng.integers(3, 9)), int(rng.integers(3, 9))
            gt[y0:y0 + h, x0:x0 + w] = sid
            segs.append({'id': sid, 'category_id': int(rng.integers(1, 4)), 'iscrowd': 1 if rng.random() < 0.2 else 0})
            sid += 1
        gt[:, int(rng.integers(0, W)):][:, :2] = 0  # a void column band
        present = set(np.unique(gt).tolist())
        segs = [s for s in segs if s['id'] in present]
        for s in segs:
            s['area'] = int(np.count_nonzero(gt == s['id']))
        # prediction: the ground truth perturbed: shifted rectangles, relabelled ids, spurious segments
        pred = np.zeros((H, W), dtype=np.int64)
        psegs = []
        idmap = {}
        for s in segs:
            pid = int(rng.integers(1, 1 << 20))
            while pid in idmap.values():
                pid = int(rng.integers(1, 1 << 20))
            idmap[s['id']] = pid
        for s in segs:
            mask = gt == s['id']
            if s['category_id'] < 10:
                dy, dx = int(rng.integers(-2, 3)), int(rng.integers(-2, 3))
                mask = np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
            pred[mask] = idmap[s['id']]
            cat = s['category_id'] if rng.random() > 0.1 else int(rng.choice([1, 2, 3, 10, 11, 12]))
            psegs.append({'id': idmap[s['id']], 'category_id': cat})
        # a spurious segment, partly on void
        x0, y0 = int(rng.integers(0, W - 5)), int(rng.integers(0, H - 5))
        sp = max(idmap.values()) + 1
        pred[y0:y0 + 4, x0:x0 + 5] = sp
        psegs.append({'id': sp, 'category_id': int(rng.choice([1, 2, 3, 10, 11, 12]))})
        present = set(np.unique(pred).tolist())
        psegs = [s for s in psegs if s['id'] in present]
        pq_image(gt, segs, pred, psegs, categories, stat)
        images.append({'height': H, 'width': W, 'gt_ids': gt.reshape(-1).tolist(), 'gt_segments': segs,
                       'pred_ids': pred.reshape(-1).tolist(), 'pred_segments': psegs})
    results = {}
    for name, isthing in [('All', None), ('Things', True), ('Stuff', False)]:
        results[name], per = pq_average(stat, categories, isthing)
        if name == 'All':
            results['per_class'] = per
    lines = ['{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}'.format('', 'PQ', 'SQ', 'RQ', 'N'), '-' * (10 + 7 * 4)]
    for name in ['All', 'Things', 'Stuff']:
        r = results[name]
        lines.append('{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}'.format(name, 100 * r['pq'], 100 * r['sq'], 100 * r['rq'], r['n']))
    stats = {str(k): {'iou': v[0], 'tp': v[1], 'fp': v[2], 'fn': v[3]} for k, v in stat.items()}
    return {'categories': categories, 'images': images, 'expected': results, 'stats': stats,
            'table': '\n'.join(lines) + '\n'}


def dump(name, obj):
    with open(os.path.join(HERE, name), 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


if __name__ == '__main__':
    dump('coco_bbox.json', make_bbox_scenario())
    dump('coco_segm.json', make_segm_scenario())
    dump('rle_cases.json', make_rle_cases())
    dump('numpy_mean.json', make_mean_cases())
    dump('panoptic.json', make_panoptic_scenario())
    for n in sorted(os.listdir(HERE)):
        if n.endswith('.json'):
            print(n, os.path.getsize(os.path.join(HERE, n)))
