"""Goldens for the detection-model tests: tiny torchvision 0.14 Faster R-CNN, Mask R-CNN and RetinaNet models.

Run with /usr/bin/python3 (Debian python3-torch 1.13 / python3-torchvision 0.14) from anywhere; it writes next to
this file, and running it twice gives byte-identical files (everything is seeded; one CPU thread). Case names as
arguments make only those cases (e.g. `make_detection.py mrcnn_r18`); the cases do not depend on each other.

Files, per case <case> in frcnn_r18, frcnn_r50, frcnn_r50_dcnv2, frcnn_r50_dcnv1, mrcnn_r18, retina_r18, retina_r18_v2:
  <case>.pth           torch.save(model.state_dict()) of the torchvision model (torchvision's key names and
                       order; FrozenBatchNorm2d buffers weight/bias/running_mean/running_var, no num_batches_tracked)
  <case>_img0.png      input image 0 (RGB uint8), 80x112 (H x W)
  <case>_img1.png      input image 1 (RGB uint8), 120x90 (H x W)
  <case>.json          config, inputs, outputs (layout below)
and frcnn_r18_oldkeys.pth: frcnn_r18.pth with rpn.head.conv.0.0.weight / rpn.head.conv.0.0.bias stored under their
pre-0.13 names rpn.head.conv.weight / rpn.head.conv.bias (and the pickled state-dict metadata of "rpn.head" set to
version 1, as an old checkpoint has; RPNHead._load_from_state_dict renames them back for version < 2). torchvision
loads it into the frcnn_r18 model (strict) and gives identical outputs; that is checked here. For mrcnn_r18 the
script only checks (no file) that its weights with the mask head under the pre-0.13 names
roi_heads.mask_head.mask_fcn{i+1}.{weight,bias} (metadata version 1; MaskRCNNHeads._load_from_state_dict renames them to
roi_heads.mask_head.{i}.0.*) load into torchvision and give the same masks; the C# test renames the keys itself.

frcnn_r50_dcnv2 and frcnn_r50_dcnv1 are frcnn_r50 (narrow Bottleneck ResNet) whose blocks' 3x3 convolutions (conv2) in
the stages config.backbone.dcn.stages (layer numbers; 2, 3, 4 = c3-c5) are deformable: DeformConvPack below, mmcv's
ModulatedDeformConv2dPack ("dcnv2") or DeformConv2dPack ("dcnv1") written on torchvision.ops.deform_conv2d, with
mmdetection's key names (layerN.i.conv2.weight, no bias; layerN.i.conv2.conv_offset.weight / .bias). conv_offset gets
seeded non-zero weights (override "*conv_offset": any key containing conv_offset), so the offsets are about a pixel
and the masks vary.

mrcnn_r18 is MaskRCNN on a ResNet-18 body of stage widths 8, 16, 16, 16 (FPN 16), the frcnn cases' RPN and box
branch, and the mask branch: MultiScaleRoIAlign 14x14 sampling 2 over "0".."3", MaskRCNNHeads(16, [16]*4, dilation
1), MaskRCNNPredictor(16, dim_reduced 16, 4 classes) (28x28 logits). Its training targets carry masks: each shape
of make_image drawn alone (full extent; later shapes' occlusion ignored), uint8 [K, H, W].

Model input: image k is PNG / 255 in float32 (uint8 -> float32, then divide by 255.0 in float32), CHW, and the
two images are passed to the model as a list [img0, img1]. The models' weights are seeded random numbers rounded to
bfloat16-representable float32 values (so the checkpoints compress in git; this has no other meaning), except the
class-logit layer (box_predictor.cls_score / classification_head.cls_logits), which is then calibrated on the two
images so that the detections are varied (all classes, 5-100 per image) and no candidate score lies within 1e-4 of
the score threshold (see weights.calibration). FrozenBatchNorm2d is y = x * scale + shift with
scale = weight * rsqrt(running_var + 1e-5), shift = bias - running_mean * scale.

Tensors in the JSON are {"shape": [...], "dtype": "float32" | "int64", "data": [flat row-major values]}; floats
are printed with 9 significant digits (they round-trip float32). Boxes are (x1, y1, x2, y2). Image sizes are [H, W].

<case>.json:
  case, model ("FasterRCNN" | "RetinaNet"), torch, torchvision   (versions that made it)
  checkpoint         "<case>.pth"
  config             everything the C# side needs to build the model:
    backbone: block ("BasicBlock" | "Bottleneck"), expansion (1 | 4), layers [4], widths [4] (stage planes;
              the stem conv1 7x7/2 has widths[0] outputs and the block inplanes start at widths[0]),
              stage_out_channels [4] (= widths * expansion), norm "FrozenBatchNorm2d", frozen_bn_eps 1e-5,
              returned_layers (e.g. [1,2,3,4] -> body outputs "0".."3"), trainable_layers, frozen_prefixes
              (body parameters with requires_grad False: they get no gradient), stride_in_1x1 false (torchvision
              Bottleneck: the stride is on conv2, the 3x3), dcn (deformable cases only) {kind "dcnv2" | "dcnv1",
              stages [layer numbers], offset_groups 1}
    fpn: in_channels_list, out_channels, extra_blocks {"type": "LastLevelMaxPool"} (adds "pool" =
         max_pool2d(P_last, 1, 2, 0)) or {"type": "LastLevelP6P7", "in_channels", "out_channels", "use_P5"}
         (p6 = conv3x3/2(P5 if use_P5 else C5), p7 = conv3x3/2(relu(p6))), names (FPN output keys in order)
    anchors: sizes [[...] per level], aspect_ratios [[...] per level] (AnchorGenerator)
    transform: min_size, max_size, image_mean, image_std, size_divisible (GeneralizedRCNNTransform: normalize,
               bilinear resize by scale = min(min_size / min(H, W), max_size / max(H, W)) with
               recompute_scale_factor=True (output size floor(H * scale), floor(W * scale), scale a float32 value),
               then zero-pad into one batch whose H and W are rounded up to a multiple of size_divisible)
    num_classes (including background for Faster R-CNN; RetinaNet's sigmoid classes, label = class index)
    Mask R-CNN: as Faster R-CNN, plus mask_roi_pool {featmap_names, output_size, sampling_ratio}, mask_head
                {type "MaskRCNNHeads", in_channels, layers, dilation}, mask_predictor {type "MaskRCNNPredictor",
                in_channels, dim_reduced, num_classes}
    Faster R-CNN: rpn {head_conv_depth, pre_nms_top_n_train/test, post_nms_top_n_train/test, nms_thresh,
                  fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction, score_thresh, min_size,
                  box_coder_weights}, box_roi_pool {featmap_names, output_size, sampling_ratio}, box_head
                  {type "TwoMLPHead", in_channels, representation_size}, box_predictor {type "FastRCNNPredictor",
                  in_channels, num_classes}, roi_heads {score_thresh, nms_thresh, detections_per_img,
                  fg_iou_thresh, bg_iou_thresh, batch_size_per_image, positive_fraction, bbox_reg_weights,
                  min_box_size 0.01}
    RetinaNet: head {conv_depth 4, norm null | {"type": "GroupNorm", "num_groups", "eps"} (with a norm the 3x3
               convs have no bias), regression_loss "l1" | "giou", focal_alpha, focal_gamma}, score_thresh,
               nms_thresh, detections_per_img, topk_candidates, fg_iou_thresh, bg_iou_thresh,
               allow_low_quality_matches, box_coder_weights
  weights            {seed, init, overrides, calibration} how the weights were drawn (informational; the .pth is
                     the truth)
  state_dict         [[key, shape], ...] in the checkpoint's order
  images             [{file, height, width}] (original sizes)
  eval               model.eval(), model([img0, img1]):
    image_sizes      [[h, w], [h, w]] the resized sizes the transform produced
    batch_shape      [2, 3, H, W] the padded batch
    num_anchors_per_level  anchors per image per FPN level (H_l * W_l * anchors per location)
    features_image0  per FPN level (in order of config.fpn.names): {name, shape [C, H, W], sum, abs_sum (float64
                     sums of the float32 values), first32 (the first 32 values, row-major)} of image 0's slice of the
                     batch features (the padded batch, so the padding region is included)
    rpn (Faster R-CNN): proposals [tensor [N_i, 4] per image] as model.rpn returns them (resized-image frame,
                     clipped to the resized image, torchvision's order = decreasing objectness after per-level NMS),
                     scores [tensor [N_i]] their sigmoid(objectness) (filter_proposals' scores, which the model
                     does not return). Some adjacent scores differ by one float32 ulp (checks.nms min_score_gap), so
                     compare proposals allowing such neighbours to swap.
    head_image0 (RetinaNet): cls_logits tensor [A, num_classes], bbox_regression tensor [A, 4] for image 0,
                     concatenated over levels (torchvision's anchor order: level, then y, x, then anchor)
    detections       [{boxes [K, 4] (original-image pixels), scores [K], labels [K] int64}] per image, in
                     torchvision's order
    masks (Mask R-CNN) per image, for its K detections in order:
                     count K, size [M, M] (28); the RoI heads' masks before pasting (sigmoid of the label's logits,
                     [K, 1, M, M]): first {shape [min(K, 3), M, M], data} the first 3 in full, rows {index [3, 14, 24],
                     shape [K, 3, M], data} those rows of every mask, sums [K] (float64 sums); values rounded to 7
                     decimals. pasted [K] the model's output masks [K, 1, H, W] (paste_masks_in_image at the
                     original-image boxes): {counts: COCO uncompressed RLE of (mask > 0.5) (run lengths in
                     column-major order, zeros first), sum (float64 sum of the probabilities), near_half: row-major
                     pixel indices whose probability is within 1e-4 of 0.5}. paste_corner_margin: how close the
                     expanded boxes' corners came to an integer (paste truncates them), over the image's detections.
  train              model.train(), the same images, targets below, losses = model(images, targets),
                     sum(losses.values()).backward() (no optimizer step)
    targets          [{boxes tensor [K, 4] float32 in original-image pixels, labels tensor [K] int64, and for Mask
                     R-CNN masks {size [H, W], counts [per instance: COCO uncompressed RLE counts as above]}}]
    targets_resized  the target boxes as the transform rescaled them (resized frame)
    image_sizes, batch_shape   as in eval
    losses           {term: value} every loss term (Faster R-CNN: loss_classifier, loss_box_reg,
                     loss_objectness, loss_rpn_box_reg; Mask R-CNN also loss_mask; RetinaNet: classification,
                     bbox_regression), float32
                     values printed in full as doubles
    loss_total       their sum (the tensor that was back-propagated)
    grads            {parameter name: tensor} the gradient of loss_total w.r.t. these parameters
    Faster / Mask R-CNN only (sampling is random in torchvision; these make it reproducible; sampler_notes repeats what
    the indices index):
    rpn_sampler      per image {pos: [...], neg: [...], num_anchors}: the anchor indices that
                     rpn.fg_bg_sampler picked as positive / negative (ascending). They index the image's anchors
                     in torchvision's anchor order (levels concatenated; within a level y, x, then anchor).
    roi_heads_num_proposals  per image, how many RPN proposals the RoI heads received (before adding gt boxes)
    roi_sampler      per image {pos, neg, num_candidates, pos_boxes, neg_boxes}: the indices that roi_heads.fg_bg_sampler picked,
                     into the image's proposals after add_gt_proposals = the RPN proposals (in RPN order)
                     followed by the ground-truth boxes (in target order); num_candidates = proposals + gts.
                     The RoI heads then take, per image, the union of pos and neg in ascending index order
                     (torch.where(pos | neg)) and concatenate the images. pos_boxes / neg_boxes [K, 4] are the picked
                     candidates themselves (resized frame), so a replay can find them by coordinates where RPN proposals
                     whose scores differ by an ulp come out in the other order.
  checks             diagnostics, so a mismatch can be told from an ill-posed comparison:
    near_threshold   score candidates within 1e-4 of the detection score threshold (empty = none; the
                     calibration makes it empty): Faster R-CNN [{image, index = proposal * (num_classes - 1) +
                     class - 1, value}], RetinaNet [{image, level, index = anchor in level * num_classes + class,
                     value}]
    train            the same for the training forward: matchers (below) and, for Faster R-CNN, nms and cuts of
                     the RPN (its proposals are what the RoI sampler's indices refer to)
    nms              per NMS call {stage, image, candidates, kept, iou_thresh, min_iou_margin (the smallest
                     |max IoU with an earlier kept box of the same group - thresh| over all candidates),
                     min_score_gap (smallest gap between distinct sorted candidate scores), ties (number of
                     equal adjacent sorted candidate scores)}
    cuts             top-k cuts {stage, image, level?, k, n, gap (score k-th minus (k+1)-th)}; a gap 0 means the
                     cut falls inside a tie and torchvision's pick among the tied is implementation-defined
    matchers         (training) per Matcher call {stage "rpn" | "roi_heads" | "retina", image, gts, candidates,
                     fg, bg, between (counts of matched / below-low / between-thresholds results),
                     min_thresh_margin (smallest |best IoU of a candidate - fg or bg threshold|), low_quality (with
                     allow_low_quality_matches: per gt {best IoU, count of candidates sharing it exactly, next_gap to
                     the next lower IoU of that gt})}
    notes            free text
Note on NMS: torchvision's batched_nms offsets the boxes by group * (max coordinate + 1) when it gets at most
1000 boxes on CPU (more: one nms per group); IoUs then differ in the last bits from unshifted ones.
"""
import hashlib
import io
import json
import math
import os
import re
import sys
from collections import OrderedDict
from functools import partial

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops import boxes as box_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_SIZES = [(80, 112), (120, 90)]


# ----------------------------------------------------------------------------------------------------------------
# JSON helpers

def f9(v):
    return float(f"{v:.9g}")


def t(x):
    x = x.detach().contiguous().cpu()
    if x.dtype in (torch.int64, torch.int32, torch.uint8, torch.bool):
        return {"shape": list(x.shape), "dtype": "int64", "data": [int(v) for v in x.reshape(-1).tolist()]}
    return {"shape": list(x.shape), "dtype": "float32", "data": [f9(v) for v in x.float().reshape(-1).tolist()]}


# ----------------------------------------------------------------------------------------------------------------
# Models

class NarrowResNet(ResNet):
    """torchvision's ResNet with stage planes `widths` instead of 64/128/256/512 (same modules and key names);
    no avgpool / fc (IntermediateLayerGetter drops them anyway)."""

    def __init__(self, block, layers, widths, norm_layer=FrozenBatchNorm2d):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer
        self.inplanes = widths[0]
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)


class DeformConvPack(nn.Module):
    """mmcv's ModulatedDeformConv2dPack (modulated) / DeformConv2dPack on torchvision.ops.deform_conv2d, as a ResNet
    block's 3x3 convolution: weight [out, in / groups, 3, 3] (no bias) and conv_offset, a plain convolution with the
    same kernel, stride, padding and dilation predicting 3 * 9 (modulated) or 2 * 9 channels. Modulated:
    o1, o2, m = chunk(conv_offset(x), 3, dim=1); offset = cat(o1, o2); mask = sigmoid(m)."""

    def __init__(self, conv, modulated):
        super().__init__()
        self.modulated = modulated
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        assert conv.groups == 1 and conv.bias is None and conv.kernel_size == (3, 3)
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.conv_offset = nn.Conv2d(conv.in_channels, (3 if modulated else 2) * 9, 3, conv.stride, conv.padding,
                                     conv.dilation, bias=True)

    def forward(self, x):
        out = self.conv_offset(x)
        if self.modulated:
            o1, o2, m = torch.chunk(out, 3, dim=1)
            offset, mask = torch.cat((o1, o2), dim=1), torch.sigmoid(m)
        else:
            offset, mask = out, None
        return torchvision.ops.deform_conv2d(x, offset, self.weight, None, self.stride, self.padding, self.dilation,
                                             mask)


def make_deformable(body, dcn):
    """Replaces conv2 of every block of the stages dcn["stages"] (layer numbers) by a DeformConvPack."""
    for stage in dcn["stages"]:
        for block in getattr(body, f"layer{stage}"):
            block.conv2 = DeformConvPack(block.conv2, dcn["kind"] == "dcnv2")


def freeze(body, trainable_layers):
    """The freezing _resnet_fpn_extractor applies; returns the frozen top-level prefixes."""
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    frozen = set()
    for name, p in body.named_parameters():
        if all(not name.startswith(layer) for layer in layers_to_train):
            p.requires_grad_(False)
            frozen.add(name.split(".")[0])
    return sorted(frozen)


def backbone_config(block, layers, widths, returned, trainable_layers):
    exp = block.expansion
    return {
        "block": block.__name__, "expansion": exp, "layers": layers, "widths": widths,
        "stage_out_channels": [w * exp for w in widths], "norm": "FrozenBatchNorm2d", "frozen_bn_eps": 1e-5,
        "returned_layers": returned, "trainable_layers": trainable_layers, "stride_in_1x1": False,
    }


def make_backbone(bcfg, fpn_out, extra):
    block = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}[bcfg["block"]]
    body = NarrowResNet(block, bcfg["layers"], bcfg["widths"])
    if "dcn" in bcfg:
        make_deformable(body, bcfg["dcn"])
    bcfg["frozen_prefixes"] = freeze(body, bcfg["trainable_layers"])
    returned = bcfg["returned_layers"]
    in_list = [bcfg["stage_out_channels"][i - 1] for i in returned]
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned)}
    if extra["type"] == "LastLevelMaxPool":
        extra_block = LastLevelMaxPool()
        names = [str(i) for i in range(len(returned))] + ["pool"]
    else:
        extra_block = LastLevelP6P7(extra["in_channels"], extra["out_channels"])
        extra["use_P5"] = extra_block.use_P5
        names = [str(i) for i in range(len(returned))] + ["p6", "p7"]
    backbone = BackboneWithFPN(body, return_layers, in_list, fpn_out, extra_blocks=extra_block)
    fpn_cfg = {"in_channels_list": in_list, "out_channels": fpn_out, "extra_blocks": extra, "names": names}
    return backbone, fpn_cfg


def build_frcnn(spec):
    bcfg = backbone_config(spec["block"], spec["layers"], spec["widths"], [1, 2, 3, 4], 3)
    if spec.get("dcn"):
        bcfg["dcn"] = {**spec["dcn"], "offset_groups": 1}
    backbone, fpn_cfg = make_backbone(bcfg, spec["fpn_out"], {"type": "LastLevelMaxPool"})
    sizes = ((8,), (16,), (32,), (64,), (128,))
    ratios = ((0.5, 1.0, 2.0),) * len(sizes)
    anchor_gen = AnchorGenerator(sizes, ratios)
    out = spec["fpn_out"]
    rep = 32
    kw = dict(spec.get("test_kwargs", {}))
    mask = spec.get("mask")
    if mask:
        kw.update(mask_head=MaskRCNNHeads(out, mask["layers"], mask["dilation"]),
                  mask_predictor=MaskRCNNPredictor(mask["layers"][-1], mask["dim_reduced"], 4))
    model = (MaskRCNN if mask else FasterRCNN)(
        backbone, num_classes=None, min_size=96, max_size=160, rpn_anchor_generator=anchor_gen,
        box_head=TwoMLPHead(out * 7 * 7, rep), box_predictor=FastRCNNPredictor(rep, 4), **kw)
    rpn, rh = model.rpn, model.roi_heads
    cfg = {
        "backbone": bcfg, "fpn": fpn_cfg,
        "anchors": {"sizes": [list(s) for s in sizes], "aspect_ratios": [list(r) for r in ratios]},
        "transform": transform_cfg(model), "num_classes": 4,
        "rpn": {
            "head_conv_depth": len(rpn.head.conv),
            "pre_nms_top_n_train": rpn._pre_nms_top_n["training"], "pre_nms_top_n_test": rpn._pre_nms_top_n["testing"],
            "post_nms_top_n_train": rpn._post_nms_top_n["training"],
            "post_nms_top_n_test": rpn._post_nms_top_n["testing"],
            "nms_thresh": rpn.nms_thresh, "fg_iou_thresh": rpn.proposal_matcher.high_threshold,
            "bg_iou_thresh": rpn.proposal_matcher.low_threshold,
            "batch_size_per_image": rpn.fg_bg_sampler.batch_size_per_image,
            "positive_fraction": rpn.fg_bg_sampler.positive_fraction, "score_thresh": rpn.score_thresh,
            "min_size": rpn.min_size, "box_coder_weights": list(rpn.box_coder.weights),
            "allow_low_quality_matches": rpn.proposal_matcher.allow_low_quality_matches,
        },
        "box_roi_pool": {"featmap_names": list(rh.box_roi_pool.featmap_names),
                         "output_size": list(rh.box_roi_pool.output_size),
                         "sampling_ratio": rh.box_roi_pool.sampling_ratio},
        "box_head": {"type": "TwoMLPHead", "in_channels": out * 7 * 7, "representation_size": rep},
        "box_predictor": {"type": "FastRCNNPredictor", "in_channels": rep, "num_classes": 4},
        "roi_heads": {
            "score_thresh": rh.score_thresh, "nms_thresh": rh.nms_thresh, "detections_per_img": rh.detections_per_img,
            "fg_iou_thresh": rh.proposal_matcher.high_threshold, "bg_iou_thresh": rh.proposal_matcher.low_threshold,
            "allow_low_quality_matches": rh.proposal_matcher.allow_low_quality_matches,
            "batch_size_per_image": rh.fg_bg_sampler.batch_size_per_image,
            "positive_fraction": rh.fg_bg_sampler.positive_fraction,
            "bbox_reg_weights": list(rh.box_coder.weights), "min_box_size": 1e-2,
        },
    }
    if mask:
        cfg["mask_roi_pool"] = {"featmap_names": list(rh.mask_roi_pool.featmap_names),
                                "output_size": list(rh.mask_roi_pool.output_size),
                                "sampling_ratio": rh.mask_roi_pool.sampling_ratio}
        cfg["mask_head"] = {"type": "MaskRCNNHeads", "in_channels": out, "layers": mask["layers"],
                            "dilation": mask["dilation"]}
        cfg["mask_predictor"] = {"type": "MaskRCNNPredictor", "in_channels": mask["layers"][-1],
                                 "dim_reduced": mask["dim_reduced"], "num_classes": 4}
    return model, cfg


def build_retina(spec):
    bcfg = backbone_config(BasicBlock, [2, 2, 2, 2], [8, 16, 32, 64], [2, 3, 4], 3)
    v2 = spec["v2"]
    extra = {"type": "LastLevelP6P7", "in_channels": 64 if v2 else 16, "out_channels": 16}
    backbone, fpn_cfg = make_backbone(bcfg, 16, extra)
    sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [16, 32, 64, 128, 256])
    ratios = ((0.5, 1.0, 2.0),) * len(sizes)
    anchor_gen = AnchorGenerator(sizes, ratios)
    num_anchors = anchor_gen.num_anchors_per_location()[0]
    norm = partial(nn.GroupNorm, 8) if v2 else None
    head = RetinaNetHead(16, num_anchors, 4, norm_layer=norm)
    if v2:
        head.regression_head._loss_type = "giou"
    model = RetinaNet(backbone, 4, min_size=96, max_size=160, anchor_generator=anchor_gen, head=head)
    cfg = {
        "backbone": bcfg, "fpn": fpn_cfg,
        "anchors": {"sizes": [list(s) for s in sizes], "aspect_ratios": [list(r) for r in ratios]},
        "transform": transform_cfg(model), "num_classes": 4,
        "head": {"conv_depth": 4, "norm": {"type": "GroupNorm", "num_groups": 8, "eps": 1e-5} if v2 else None,
                 "regression_loss": head.regression_head._loss_type, "focal_alpha": 0.25, "focal_gamma": 2.0,
                 "giou_eps": 1e-7},
        "score_thresh": model.score_thresh, "nms_thresh": model.nms_thresh,
        "detections_per_img": model.detections_per_img, "topk_candidates": model.topk_candidates,
        "fg_iou_thresh": model.proposal_matcher.high_threshold, "bg_iou_thresh": model.proposal_matcher.low_threshold,
        "allow_low_quality_matches": model.proposal_matcher.allow_low_quality_matches,
        "box_coder_weights": list(model.box_coder.weights),
    }
    return model, cfg


def transform_cfg(model):
    tr = model.transform
    return {"min_size": list(tr.min_size)[0], "max_size": tr.max_size, "image_mean": tr.image_mean,
            "image_std": tr.image_std, "size_divisible": tr.size_divisible}


# ----------------------------------------------------------------------------------------------------------------
# Weights

def init_weights(model, seed, overrides):
    """Every parameter and FrozenBN buffer from a seeded generator: conv / linear weights N(0, 1) * gain / sqrt(fan_in),
    biases N(mean, 0.1), norm weights U(0.5, 1.5), running_mean N(0, 0.1), running_var U(0.5, 1.5); `overrides`
    maps a key prefix (or, written "*name", any key containing name) to {gain, bias_mean, bias_std}. Values are rounded
    to bfloat16-representable float32."""
    g = torch.Generator().manual_seed(seed)
    norm_modules = {n for n, m in model.named_modules() if isinstance(m, (FrozenBatchNorm2d, nn.GroupNorm))}
    with torch.no_grad():
        for key, p in model.state_dict(keep_vars=True).items():
            mod, _, leaf = key.rpartition(".")
            o = {"gain": 1.0, "bias_mean": 0.0, "bias_std": 0.1}
            for prefix, ov in overrides:
                if key.startswith(prefix) or (prefix.startswith("*") and prefix[1:] in key):
                    o = {**o, **ov}
            if mod in norm_modules:
                if leaf in ("weight", "running_var"):
                    v = torch.rand(p.shape, generator=g) + 0.5
                else:
                    v = torch.randn(p.shape, generator=g) * 0.1
            elif leaf == "bias":
                v = torch.randn(p.shape, generator=g) * o["bias_std"] + o["bias_mean"]
            else:
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=g) * (o["gain"] / math.sqrt(fan_in))
            p.copy_(v.to(torch.bfloat16).to(torch.float32))


def class_layer(model, kind):
    return model.roi_heads.box_predictor.cls_score if kind == "frcnn" else model.head.classification_head.cls_logits


def class_logits(model, kind, images):
    """The class-logit layer's outputs on these images, [rows, channels] (RetinaNet: every level and position)."""
    ys = []
    h = class_layer(model, kind).register_forward_hook(
        lambda m, i, o: ys.append(o if o.dim() == 2 else o.permute(0, 2, 3, 1).reshape(-1, o.shape[1])))
    model.eval()
    with torch.no_grad():
        model(images)
    h.remove()
    return torch.cat(ys)


def score_thresh_margin(model, kind, images):
    """The smallest |candidate score - score threshold| over every proposal/anchor and class on these images."""
    y = class_logits(model, kind, images)
    if kind == "frcnn":
        return float((torch.softmax(y, -1)[:, 1:] - model.roi_heads.score_thresh).abs().min())
    return float((torch.sigmoid(y) - model.score_thresh).abs().min())


def calibrate(model, kind, images, target_std, target_means):
    """Rescales the class-logit layer (box predictor cls_score / RetinaNet cls_logits) so that, on these images,
    each output channel's logits have mean target_means[channel] and std target_std[channel] (one forward pass;
    deterministic). Random weights otherwise give one class a large common-mode logit; a small background std
    keeps the box head's foreground-vs-background margins varied."""
    layer = class_layer(model, kind)
    y = class_logits(model, kind, images)
    with torch.no_grad():
        b = layer.bias.clone()
        mean = y.mean(0)
        k = target_std / (y - mean).std(0)
        layer.weight.mul_(k.reshape([-1] + [1] * (layer.weight.dim() - 1)))
        layer.bias.copy_(target_means - k * (mean - b))  # (these two are not rounded to bfloat16)


def calibrate_clear_of_threshold(model, kind, images, cal, seed):
    """calibrate() (for Faster R-CNN with the class balancing below), shifting the foreground means by small steps
    until no candidate score lies within 1e-4 of the score threshold (so that float32 rounding differences cannot
    move a candidate across it)."""
    g = torch.Generator().manual_seed(seed + 99)
    layer = class_layer(model, kind)
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    if kind == "frcnn":
        means = torch.tensor([cal["background_mean"], 0.0, 0.0, 0.0]) + torch.randn(4, generator=g) * cal["mean_jitter"]
        fg = torch.tensor([0.0, 1.0, 1.0, 1.0])
        std = torch.tensor([cal["background_std"]] + [cal["std"]] * 3)
        # balance the classes: move each foreground mean so that its per_class_top-th largest margin over the
        # background logit sits at logit(score threshold) + 0.2
        with torch.no_grad():
            calibrate(model, kind, images, std, means)
            y = class_logits(model, kind, images)
            kth = (y[:, 1:] - y[:, :1]).topk(cal["per_class_top"], dim=0).values[-1]
            thr = model.roi_heads.score_thresh
            means[1:] += math.log(thr / (1 - thr)) + 0.2 - kth
            layer.weight.copy_(w0)
            layer.bias.copy_(b0)
    else:
        n = layer.bias.numel()
        means = cal["mean"] + torch.randn(n, generator=g) * cal["mean_jitter"]
        fg = torch.ones(n)
        std = torch.full((n,), cal["std"])
    for attempt in range(200):
        with torch.no_grad():
            layer.weight.copy_(w0)
            layer.bias.copy_(b0)
        shift = attempt * 0.0137
        calibrate(model, kind, images, std, means + shift * fg)
        margin = score_thresh_margin(model, kind, images)
        if margin > 1e-4:
            return {"shift": shift, "margin": f9(margin)}
    raise SystemExit("no calibration clear of the score threshold")


# ----------------------------------------------------------------------------------------------------------------
# Images and targets

def make_image(h, w, seed, boxes, labels):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c0 = rng.uniform(40, 200, 3)
    c1 = rng.uniform(-90, 90, 3)
    c2 = rng.uniform(-90, 90, 3)
    base = c0 + c1 * (yy / h)[..., None] + c2 * (xx / w)[..., None] + rng.normal(0, 14, (h, w, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    palette = {1: (220, 40, 40), 2: (40, 200, 60), 3: (50, 70, 230)}
    for (x1, y1, x2, y2), lab in zip(boxes, labels):
        col = tuple(int(min(255, max(0, c + rng.integers(-30, 30)))) for c in palette[lab])
        if lab == 2:
            d.ellipse([x1, y1, x2 - 1, y2 - 1], fill=col)
        else:
            d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=col)
    # one distractor that is not a target
    x1, y1 = int(rng.integers(0, w - 12)), int(rng.integers(0, h - 12))
    d.ellipse([x1, y1, x1 + 10, y1 + 10], fill=(240, 230, 60))
    arr = np.asarray(img).astype(np.int16)
    arr = arr + rng.integers(-6, 7, arr.shape)  # texture inside the shapes too
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_targets(h, w, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    boxes, labels = [], []
    for _ in range(n):
        bw = int(rng.integers(max(12, w // 6), w // 2))
        bh = int(rng.integers(max(12, h // 6), h // 2))
        x1 = int(rng.integers(0, w - bw))
        y1 = int(rng.integers(0, h - bh))
        boxes.append([x1, y1, x1 + bw, y1 + bh])
        labels.append(int(rng.integers(1, 4)))
    return boxes, labels


def make_masks(h, w, boxes, labels):
    """The instance masks of make_image's shapes, each drawn alone (full extent, occlusion ignored): [K, h, w] uint8."""
    masks = []
    for (x1, y1, x2, y2), lab in zip(boxes, labels):
        m = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(m)
        if lab == 2:
            d.ellipse([x1, y1, x2 - 1, y2 - 1], fill=1)
        else:
            d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=1)
        masks.append(np.asarray(m))
    return np.stack(masks)


def rle_counts(mask):
    """COCO's uncompressed RLE counts of a binary [H, W] mask: run lengths in column-major order, zeros first."""
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    counts, prev, run = [], 0, 0
    for v in flat.tolist():
        if v != prev:
            counts.append(run)
            prev, run = v, 0
        run += 1
    counts.append(run)
    return counts


# ----------------------------------------------------------------------------------------------------------------
# Diagnostics: wrap batched_nms to measure how close its decisions were

class Recorder:
    def __init__(self):
        self.stage = None
        self.image = 0
        self.nms = []
        self.active = False


REC = Recorder()
_orig_batched_nms = box_ops.batched_nms


def _iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def score_stats(scores):
    s = torch.sort(scores.double(), descending=True).values
    d = s[:-1] - s[1:]
    ties = int((d == 0).sum())
    pos = d[d > 0]
    return (f9(float(pos.min())) if pos.numel() else None), ties


def nms_margin(boxes, scores, idxs, thresh):
    order = torch.sort(scores, descending=True, stable=True).indices
    b, grp = boxes[order].double(), idxs[order]
    iou = _iou(b, b)
    same = grp[:, None] == grp[None, :]
    kept = torch.zeros(len(b), dtype=torch.bool)
    margin = float("inf")
    for j in range(len(b)):
        prev = kept[:j] & same[j, :j]
        m = float(iou[j, :j][prev].max()) if prev.any() else 0.0
        if prev.any():
            margin = min(margin, abs(m - thresh))
        kept[j] = m <= thresh
    return margin


def recording_batched_nms(boxes, scores, idxs, iou_threshold):
    keep = _orig_batched_nms(boxes, scores, idxs, iou_threshold)
    if REC.active and boxes.numel():
        gap, ties = score_stats(scores)
        REC.nms.append({"stage": REC.stage, "image": REC.image, "candidates": int(boxes.shape[0]),
                        "kept": int(keep.numel()), "iou_thresh": iou_threshold,
                        "min_iou_margin": f9(nms_margin(boxes.detach(), scores.detach(), idxs, iou_threshold)),
                        "min_score_gap": gap, "ties": ties, "_kept": scores[keep].detach()})
        REC.image += 1
    return keep


box_ops.batched_nms = recording_batched_nms


def cut_gap(scores, k):
    """gap between the k-th and (k+1)-th largest score (None when there is no cut)."""
    n = scores.numel()
    if k >= n:
        return None
    s = torch.sort(scores.double(), descending=True).values
    return f9(float(s[k - 1] - s[k]))


# ----------------------------------------------------------------------------------------------------------------
# Running the cases

def feature_stats(features):
    out = []
    for name, f in features.items():
        x = f[0].detach()
        out.append({"name": name, "shape": list(x.shape), "sum": float(x.double().sum()),
                    "abs_sum": float(x.double().abs().sum()), "first32": [f9(v) for v in x.reshape(-1)[:32].tolist()]})
    return out


def probe_rpn_top_n(model, cuts):
    """Records the gap at each per-level pre-NMS top-n cut of the RPN (undo: del model.rpn._get_top_n_idx)."""
    orig_topn = model.rpn._get_top_n_idx

    def get_top_n_idx(objectness, num_anchors_per_level):
        for i in range(objectness.shape[0]):
            for lvl, ob in enumerate(objectness[i].split(num_anchors_per_level)):
                k = min(model.rpn.pre_nms_top_n(), ob.numel())
                g = cut_gap(ob, k)
                if g is not None:
                    cuts.append({"stage": "rpn_pre_nms_top_n", "image": i, "level": lvl, "k": k, "n": ob.numel(),
                                 "gap": g})
        return orig_topn(objectness, num_anchors_per_level)

    model.rpn._get_top_n_idx = get_top_n_idx


def nms_cuts(records, caps, cuts):
    """Adds the gap at each keep[:k] cut after an NMS to `cuts` (and drops the kept scores from the records)."""
    for r in records:
        kept = r.pop("_kept")
        k = caps.get(r["stage"])
        if k is not None and kept.numel() > k:
            cuts.append({"stage": r["stage"] + "_keep_top", "image": r["image"], "k": k, "n": kept.numel(),
                         "gap": cut_gap(kept, k)})


def run_eval(model, kind, images, cfg):
    model.eval()
    cap = {}
    hooks = [
        model.transform.register_forward_hook(lambda m, i, o: cap.__setitem__("images", o[0])),
        model.backbone.register_forward_hook(lambda m, i, o: cap.__setitem__("features", o)),
    ]
    cuts = []
    if kind == "frcnn":
        hooks.append(model.rpn.register_forward_hook(lambda m, i, o: cap.__setitem__("proposals", o[0])))
        hooks.append(model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: cap.__setitem__("pred", o)))
        hooks.append(model.rpn.register_forward_pre_hook(lambda m, i: set_stage("rpn")))
        hooks.append(model.roi_heads.register_forward_pre_hook(lambda m, i: set_stage("box")))
        hooks.append(model.roi_heads.register_forward_hook(lambda m, i, o: cap.__setitem__("roi_out", [{k: v.clone() for k, v in r.items()} for r in o[0]])))
        orig_filter = model.rpn.filter_proposals

        def filter_proposals(proposals, objectness, image_shapes, num_anchors_per_level):
            boxes, scores = orig_filter(proposals, objectness, image_shapes, num_anchors_per_level)
            cap["rpn_scores"] = scores
            return boxes, scores

        model.rpn.filter_proposals = filter_proposals
        probe_rpn_top_n(model, cuts)
    else:
        hooks.append(model.head.register_forward_hook(lambda m, i, o: cap.__setitem__("head", o)))
        hooks.append(model.head.register_forward_pre_hook(lambda m, i: set_stage("retina")))
    REC.active, REC.nms = True, []
    with torch.no_grad():
        dets = model(images)
    REC.active = False
    for h in hooks:
        h.remove()
    if kind == "frcnn":
        del model.rpn.filter_proposals, model.rpn._get_top_n_idx

    il = cap["images"]
    feats = cap["features"]
    A = len(cfg["anchors"]["aspect_ratios"][0]) * len(cfg["anchors"]["sizes"][0])
    out = {
        "image_sizes": [list(s) for s in il.image_sizes], "batch_shape": list(il.tensors.shape),
        "num_anchors_per_level": [int(f.shape[2] * f.shape[3] * A) for f in feats.values()],
        "features_image0": feature_stats(feats),
    }
    near = []
    if kind == "frcnn":
        out["rpn"] = {"proposals": [t(p) for p in cap["proposals"]], "scores": [t(s) for s in cap["rpn_scores"]]}
        caps = {"rpn": model.rpn.post_nms_top_n(), "box": model.roi_heads.detections_per_img}
        # box head scores of every proposal and class
        class_logits = cap["pred"][0]
        probs = torch.softmax(class_logits, -1)[:, 1:]
        thresh = model.roi_heads.score_thresh
        start = 0
        for i, p in enumerate(cap["proposals"]):
            sc = probs[start:start + p.shape[0]].reshape(-1)
            start += p.shape[0]
            for j in torch.where((sc - thresh).abs() < 1e-4)[0].tolist():
                near.append({"image": i, "index": j, "value": f9(float(sc[j]))})
    else:
        head = cap["head"]
        out["head_image0"] = {"cls_logits": t(head["cls_logits"][0]), "bbox_regression": t(head["bbox_regression"][0])}
        thresh = model.score_thresh
        for i in range(head["cls_logits"].shape[0]):
            for lvl, lg in enumerate(head["cls_logits"][i].split(out["num_anchors_per_level"])):
                sc = torch.sigmoid(lg).reshape(-1)
                for j in torch.where((sc - thresh).abs() < 1e-4)[0].tolist():
                    near.append({"image": i, "level": lvl, "index": j, "value": f9(float(sc[j]))})
                above = sc[sc > thresh]
                if above.numel() > model.topk_candidates:
                    cuts.append({"stage": "topk_candidates", "image": i, "level": lvl, "k": model.topk_candidates,
                                 "n": above.numel(), "gap": cut_gap(above, model.topk_candidates)})
    if kind != "frcnn":
        caps = {"retina": model.detections_per_img}
    nms_cuts(REC.nms, caps, cuts)
    out["detections"] = [{"boxes": t(d["boxes"]), "scores": t(d["scores"]), "labels": t(d["labels"])} for d in dets]
    if "masks" in dets[0]:
        out["masks"] = [mask_record(raw["masks"], d["masks"], d["boxes"]) for raw, d in zip(cap["roi_out"], dets)]
    checks = {"near_threshold": near, "nms": REC.nms, "cuts": cuts}
    return out, checks, cap


MASK_FULL = 3
MASK_ROWS = [3, 14, 24]


def r7(v):
    return round(float(v), 7)


def mask_record(raw, pasted, boxes):
    """Mask R-CNN's masks of one image: raw [K, 1, M, M] probabilities (the RoI heads' output, before pasting) and
    pasted [K, 1, H, W] (the model's output)."""
    k, m = raw.shape[0], raw.shape[-1]
    probs = raw[:, 0].double()
    pasted = pasted[:, 0]
    # how close the paste's integer box corners come to a truncation boundary (expand_boxes, then .to(int64))
    scale = (m + 2) / m
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    corners = torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], 1).double()
    frac = corners - corners.trunc()
    margin = float(torch.minimum(frac.abs(), 1 - frac.abs()).min()) if k else None
    return {
        "count": k, "size": [m, m],
        "first": {"shape": [min(k, MASK_FULL), m, m], "dtype": "float32",
                  "data": [r7(v) for v in probs[:MASK_FULL].reshape(-1).tolist()]},
        "rows": {"index": MASK_ROWS, "shape": [k, len(MASK_ROWS), m], "dtype": "float32",
                 "data": [r7(v) for v in probs[:, MASK_ROWS].reshape(-1).tolist()]},
        "sums": [float(v) for v in probs.sum((1, 2)).tolist()],
        "pasted": [{"counts": rle_counts((p > 0.5).numpy()), "sum": float(p.double().sum()),
                    "near_half": torch.where(((p.reshape(-1) - 0.5).abs() < 1e-4))[0].tolist()} for p in pasted],
        "paste_corner_margin": f9(margin) if margin is not None else None,
    }


def set_stage(s):
    REC.stage, REC.image = s, 0


class RecordingSampler:
    def __init__(self, inner):
        self.inner = inner
        self.picks = []

    def __call__(self, matched_idxs):
        pos, neg = self.inner(matched_idxs)
        for m, p, n in zip(matched_idxs, pos, neg):
            self.picks.append({"pos": torch.where(p.bool())[0].tolist(), "neg": torch.where(n.bool())[0].tolist(),
                               "n": int(m.numel())})
        return pos, neg


class RecordingMatcher:
    """Wraps a det_utils.Matcher: records how close each anchor's / proposal's best IoU came to the thresholds and,
    for low-quality matching, how many candidates share each ground truth's best IoU."""

    def __init__(self, inner, stage, log):
        self.inner, self.stage, self.log = inner, stage, log

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, quality):
        out = self.inner(quality)
        q = quality.detach().double()
        best = q.max(0).values
        margin = min(float((best - self.inner.high_threshold).abs().min()),
                     float((best - self.inner.low_threshold).abs().min()))
        rec = {"stage": self.stage, "image": sum(1 for r in self.log if r["stage"] == self.stage),
               "gts": int(q.shape[0]), "candidates": int(q.shape[1]),
               "fg": int((out >= 0).sum()), "bg": int((out == -1).sum()), "between": int((out == -2).sum()),
               "min_thresh_margin": f9(margin)}
        if self.inner.allow_low_quality_matches:
            lq = []
            for row in q:
                top = row.max()
                rest = row[row < top]
                lq.append({"best": f9(float(top)), "count": int((row == top).sum()),
                           "next_gap": f9(float(top - rest.max())) if rest.numel() else None})
            rec["low_quality"] = lq
        self.log.append(rec)
        return out


def run_train(model, kind, images, targets, grad_names, seed):
    model.train()
    model.zero_grad(set_to_none=True)
    cap = {}
    matchers, cuts = [], []
    hooks = [model.transform.register_forward_hook(lambda m, i, o: cap.__setitem__("tr", o))]
    if kind == "frcnn":
        rpn_s = model.rpn.fg_bg_sampler = RecordingSampler(model.rpn.fg_bg_sampler)
        roi_s = model.roi_heads.fg_bg_sampler = RecordingSampler(model.roi_heads.fg_bg_sampler)
        hooks.append(model.roi_heads.register_forward_pre_hook(
            lambda m, i: cap.update(roi_in=[int(p.shape[0]) for p in i[1]], roi_props=[p.detach().clone() for p in i[1]])))
        hooks.append(model.rpn.register_forward_pre_hook(lambda m, i: set_stage("rpn")))
        probe_rpn_top_n(model, cuts)
        REC.active, REC.nms = True, []
    owners = [(model.rpn, "rpn"), (model.roi_heads, "roi_heads")] if kind == "frcnn" else [(model, "retina")]
    for owner, stage in owners:
        owner.proposal_matcher = RecordingMatcher(owner.proposal_matcher, stage, matchers)
    torch.manual_seed(seed)
    losses = model(images, targets)
    total = sum(losses.values())
    total.backward()
    for h in hooks:
        h.remove()
    for owner, _ in owners:
        owner.proposal_matcher = owner.proposal_matcher.inner
    REC.active = False
    train_checks = {"matchers": matchers}
    if kind == "frcnn":
        del model.rpn._get_top_n_idx
        nms_cuts(REC.nms, {"rpn": model.rpn.post_nms_top_n()}, cuts)
        train_checks.update({"nms": REC.nms, "cuts": cuts})
    il, tt = cap["tr"]
    params = dict(model.named_parameters())
    out = {
        "targets": [{"boxes": t(d["boxes"]), "labels": t(d["labels"]),
                     **({"masks": {"size": list(d["masks"].shape[1:]), "counts": [rle_counts(m) for m in d["masks"].numpy()]}}
                        if "masks" in d else {})} for d in targets],
        "targets_resized": [t(d["boxes"]) for d in tt],
        "image_sizes": [list(s) for s in il.image_sizes], "batch_shape": list(il.tensors.shape),
        "losses": {k: float(v) for k, v in losses.items()},
        "loss_total": float(total),
        "grads": {n: t(params[n].grad) for n in grad_names},
        "checks": train_checks,
    }
    if kind == "frcnn":
        out["rpn_sampler"] = [{"pos": p["pos"], "neg": p["neg"], "num_anchors": p["n"]} for p in rpn_s.picks]
        out["roi_heads_num_proposals"] = cap["roi_in"]
        out["roi_sampler"] = []
        for img, p in enumerate(roi_s.picks):
            candidates = torch.cat([cap["roi_props"][img], tt[img]["boxes"]])
            out["roi_sampler"].append({"pos": p["pos"], "neg": p["neg"], "num_candidates": p["n"],
                                       "pos_boxes": t(candidates[p["pos"]]), "neg_boxes": t(candidates[p["neg"]])})
        out["sampler_notes"] = {
            "rpn_sampler": "indices into the image's anchors in torchvision's order: FPN levels concatenated, within a "
                           "level row-major over (y, x), then the anchors of one location (ratios outer, sizes inner "
                           "as AnchorGenerator makes them); num_anchors = all anchors of the image",
            "roi_sampler": "indices into the image's RoI-head candidates = the RPN proposals (training-mode RPN, in "
                           "its output order) followed by the ground-truth boxes (add_gt_proposals); num_candidates = "
                           "roi_heads_num_proposals[i] + number of gt boxes; the heads use torch.where(pos | neg), "
                           "i.e. ascending indices",
        }
        model.rpn.fg_bg_sampler = rpn_s.inner
        model.roi_heads.fg_bg_sampler = roi_s.inner
    model.zero_grad(set_to_none=True)
    model.eval()
    return out


def frcnn_overrides(body_gain):
    return [
        ("backbone.body", {"gain": body_gain}),
        ("backbone.fpn", {"gain": 0.6}),
        ("rpn.head.conv", {"gain": 1.4}),
        ("rpn.head.cls_logits", {"gain": 1.5, "bias_mean": -1.0, "bias_std": 0.3}),
        ("rpn.head.bbox_pred", {"gain": 0.3}),
        ("roi_heads.box_head", {"gain": 1.4}),
        ("roi_heads.box_predictor.bbox_pred", {"gain": 1.0}),
    ]


RETINA_OVERRIDES = [
    ("backbone.body", {"gain": 1.0}),
    ("backbone.fpn", {"gain": 0.8}),
    ("head.classification_head.conv", {"gain": 1.4}),
    ("head.regression_head.conv", {"gain": 1.4}),
    ("head.regression_head.bbox_reg", {"gain": 0.5}),
]

CASES = [
    {"case": "frcnn_r18", "kind": "frcnn", "seed": 1001, "block": BasicBlock, "layers": [2, 2, 2, 2],
     "widths": [8, 16, 32, 64], "fpn_out": 16, "overrides": frcnn_overrides(1.0),
     "calibration": {"std": 1.5, "background_mean": 8.0, "background_std": 0.3, "mean_jitter": 0.1,
                     "per_class_top": 12},
     "grads": ["rpn.head.conv.0.0.weight", "rpn.head.cls_logits.bias", "roi_heads.box_predictor.cls_score.weight",
               "roi_heads.box_head.fc6.bias", "backbone.fpn.layer_blocks.3.0.weight",
               "backbone.body.layer4.0.downsample.0.weight", "backbone.body.layer2.0.conv1.weight"]},
    {"case": "frcnn_r50", "kind": "frcnn", "seed": 1002, "block": Bottleneck, "layers": [1, 1, 1, 1],
     "widths": [4, 8, 16, 32], "fpn_out": 16, "overrides": frcnn_overrides(1.25),
     "calibration": {"std": 1.5, "background_mean": 4.0, "background_std": 0.3, "mean_jitter": 0.2,
                     "per_class_top": 15},
     "test_kwargs": {"rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 60, "box_score_thresh": 0.1,
                     "box_detections_per_img": 20},
     "grads": ["rpn.head.conv.0.0.weight", "rpn.head.cls_logits.bias", "roi_heads.box_predictor.cls_score.weight",
               "roi_heads.box_head.fc6.bias", "backbone.fpn.layer_blocks.3.0.weight",
               "backbone.body.layer4.0.conv1.weight", "backbone.body.layer2.0.conv2.weight"]},
    {"case": "frcnn_r50_dcnv2", "kind": "frcnn", "seed": 1021, "block": Bottleneck, "layers": [1, 1, 1, 1],
     "widths": [4, 8, 16, 32], "fpn_out": 16, "dcn": {"kind": "dcnv2", "stages": [2, 3, 4]},
     "overrides": frcnn_overrides(1.25) + [("*conv_offset", {"gain": 0.6, "bias_mean": 0.0, "bias_std": 0.5})],
     "calibration": {"std": 1.5, "background_mean": 4.0, "background_std": 0.3, "mean_jitter": 0.2,
                     "per_class_top": 15},
     "test_kwargs": {"rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 60, "box_score_thresh": 0.1,
                     "box_detections_per_img": 20},
     "grads": ["rpn.head.conv.0.0.weight", "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_head.fc6.bias",
               "backbone.fpn.layer_blocks.3.0.weight", "backbone.body.layer4.0.conv2.weight",
               "backbone.body.layer4.0.conv2.conv_offset.weight", "backbone.body.layer3.0.conv2.conv_offset.bias",
               "backbone.body.layer2.0.conv2.weight", "backbone.body.layer2.0.conv2.conv_offset.bias",
               "backbone.body.layer2.0.conv1.weight"]},
    {"case": "frcnn_r50_dcnv1", "kind": "frcnn", "seed": 1022, "block": Bottleneck, "layers": [1, 1, 1, 1],
     "widths": [4, 8, 16, 32], "fpn_out": 16, "dcn": {"kind": "dcnv1", "stages": [3, 4]},
     "overrides": frcnn_overrides(1.25) + [("*conv_offset", {"gain": 0.6, "bias_mean": 0.0, "bias_std": 0.5})],
     "calibration": {"std": 1.5, "background_mean": 4.0, "background_std": 0.3, "mean_jitter": 0.2,
                     "per_class_top": 15},
     "test_kwargs": {"rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 60, "box_score_thresh": 0.1,
                     "box_detections_per_img": 20},
     "grads": ["roi_heads.box_head.fc6.bias", "backbone.body.layer4.0.conv2.weight",
               "backbone.body.layer4.0.conv2.conv_offset.weight", "backbone.body.layer3.0.conv2.conv_offset.bias",
               "backbone.body.layer3.0.conv2.weight", "backbone.body.layer2.0.conv2.weight"]},
    {"case": "mrcnn_r18", "kind": "frcnn", "seed": 1011, "block": BasicBlock, "layers": [2, 2, 2, 2],
     "widths": [8, 16, 16, 16], "fpn_out": 16,
     "overrides": frcnn_overrides(1.0) + [("roi_heads.mask_head", {"gain": 1.4}),
                                          ("roi_heads.mask_predictor", {"gain": 3.0})],
     "calibration": {"std": 1.5, "background_mean": 8.0, "background_std": 0.3, "mean_jitter": 0.1,
                     "per_class_top": 12},
     "mask": {"layers": [16, 16, 16, 16], "dilation": 1, "dim_reduced": 16},
     "grads": ["roi_heads.mask_predictor.mask_fcn_logits.weight", "roi_heads.mask_predictor.conv5_mask.bias",
               "roi_heads.mask_head.3.0.bias", "roi_heads.mask_head.0.0.weight",
               "roi_heads.box_predictor.cls_score.weight", "rpn.head.cls_logits.bias",
               "backbone.fpn.layer_blocks.0.0.weight", "backbone.body.layer2.0.conv1.weight"]},
    {"case": "retina_r18", "kind": "retina", "seed": 1003, "v2": False, "overrides": RETINA_OVERRIDES,
     "calibration": {"std": 1.0, "mean": -6.0, "mean_jitter": 0.2},
     "grads": ["head.classification_head.cls_logits.bias", "head.regression_head.bbox_reg.weight",
               "backbone.fpn.inner_blocks.0.0.weight", "backbone.body.layer4.0.downsample.0.weight",
               "backbone.body.layer2.0.conv1.weight"]},
    {"case": "retina_r18_v2", "kind": "retina", "seed": 1004, "v2": True, "overrides": RETINA_OVERRIDES,
     "calibration": {"std": 1.0, "mean": -5.5, "mean_jitter": 0.2},
     "grads": ["head.classification_head.cls_logits.bias", "head.regression_head.bbox_reg.weight",
               "backbone.fpn.inner_blocks.0.0.weight", "backbone.body.layer4.0.downsample.0.weight",
               "backbone.body.layer2.0.conv1.weight"]},
]

GRAD_NOTE = ("backbone.body.layer4.0.conv1/conv2.weight of the BasicBlock models hold 18k/37k values; the "
             "smaller layer4.0.downsample.0.weight (1x1, stride 2) and layer2.0.conv1.weight (the deepest trainable "
             "layer, so the whole trainable body is back-propagated) stand in for them.")


def save_checkpoint(state, path):
    buf = io.BytesIO()
    torch.save(state, buf)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def run_case(spec):
    name, kind = spec["case"], spec["kind"]
    torch.manual_seed(spec["seed"])
    model, cfg = build_frcnn(spec) if kind == "frcnn" else build_retina(spec)
    overrides = spec["overrides"]
    init_weights(model, spec["seed"], overrides)
    model.eval()

    images, targets, img_meta = [], [], []
    for k, (h, w) in enumerate(IMAGE_SIZES):
        boxes, labels = make_targets(h, w, spec["seed"] * 10 + k)
        arr = make_image(h, w, spec["seed"] * 10 + k, boxes, labels)
        fname = f"{name}_img{k}.png"
        Image.fromarray(arr, "RGB").save(os.path.join(HERE, fname))
        back = np.asarray(Image.open(os.path.join(HERE, fname)).convert("RGB"))
        assert (back == arr).all()
        images.append(torch.from_numpy(back.copy()).permute(2, 0, 1).to(torch.float32) / 255.0)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
        if spec.get("mask"):
            targets[-1]["masks"] = torch.from_numpy(make_masks(h, w, boxes, labels))
        img_meta.append({"file": fname, "height": h, "width": w})
    cal = calibrate_clear_of_threshold(model, kind, images, spec["calibration"], spec["seed"])

    state = model.state_dict()
    save_checkpoint(state, os.path.join(HERE, f"{name}.pth"))

    ev, checks, cap = run_eval(model, kind, images, cfg)
    tr = run_train(model, kind, images, targets, spec["grads"], spec["seed"] + 7)
    checks["train"] = tr.pop("checks")
    notes = [GRAD_NOTE]
    if kind == "frcnn":
        notes.append("The RPN proposals feed the RoI heads in eval too; in training the RPN uses the *_train top-n "
                     "settings and its proposals are not stored (they follow from the same forward).")

    doc = OrderedDict([
        ("case", name), ("model", ("MaskRCNN" if spec.get("mask") else "FasterRCNN") if kind == "frcnn" else "RetinaNet"),
        ("torch", torch.__version__), ("torchvision", torchvision.__version__),
        ("checkpoint", f"{name}.pth"), ("config", cfg),
        ("weights", {"seed": spec["seed"], "init": " ".join(init_weights.__doc__.split()),
                     "overrides": [[p, o] for p, o in overrides],
                     "calibration": {**spec["calibration"], **cal, "doc": " ".join(calibrate.__doc__.split())}}),
        ("state_dict", [[k, list(v.shape)] for k, v in state.items()]),
        ("images", img_meta), ("eval", ev), ("train", tr), ("checks", {**checks, "notes": notes}),
    ])
    with open(os.path.join(HERE, f"{name}.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")

    # summary
    print(f"== {name}")
    print("  resized", ev["image_sizes"], "batch", ev["batch_shape"], "anchors/level", ev["num_anchors_per_level"])
    for fs in ev["features_image0"]:
        n = np.prod(fs["shape"])
        print(f"  feat {fs['name']:>4} {fs['shape']} mean|x| {fs['abs_sum'] / n:.3f}")
    if kind == "frcnn":
        print("  proposals", [p["shape"][0] for p in ev["rpn"]["proposals"]])
    for i, d in enumerate(ev["detections"]):
        sc = d["scores"]["data"]
        print(f"  image {i}: {len(sc)} detections, scores {min(sc, default=0):.3f}..{max(sc, default=0):.3f}, labels",
              sorted(set(d["labels"]["data"])))
    print("  near threshold", checks["near_threshold"])
    for r in checks["nms"]:
        print("  nms", r)
    for c in checks["cuts"]:
        print("  cut", c)
    for m in checks["train"]["matchers"]:
        print("  matcher", m)
    for k in ("nms", "cuts"):
        for r in checks["train"].get(k, []):
            print("  train", k, r)
    print("  losses", tr["losses"])
    if kind == "frcnn":
        print("  roi heads got", tr["roi_heads_num_proposals"], "rpn pos/neg",
              [(len(p["pos"]), len(p["neg"])) for p in tr["rpn_sampler"]], "roi pos/neg",
              [(len(p["pos"]), len(p["neg"])) for p in tr["roi_sampler"]])
    return model, images, ev


def old_keys(model, images, ev):
    """frcnn_r18_oldkeys.pth: the pre-0.13 RPN head names; torchvision must load it back to the same outputs."""
    state = model.state_dict()
    old = OrderedDict()
    for k, v in state.items():
        old[k.replace("rpn.head.conv.0.0.", "rpn.head.conv.")] = v
    meta = OrderedDict((k, dict(v)) for k, v in state._metadata.items())
    meta["rpn.head"]["version"] = 1
    for k in [k for k in meta if k.startswith("rpn.head.conv.")]:
        del meta[k]
    old._metadata = meta
    path = os.path.join(HERE, "frcnn_r18_oldkeys.pth")
    save_checkpoint(old, path)
    loaded = torch.load(path)
    assert "rpn.head.conv.weight" in loaded and "rpn.head.conv.0.0.weight" not in loaded
    spec = CASES[0]
    torch.manual_seed(0)
    fresh, _ = build_frcnn(spec)
    fresh.load_state_dict(loaded)
    fresh.eval()
    with torch.no_grad():
        dets = fresh(images)
    for d, e in zip(dets, ev["detections"]):
        assert t(d["boxes"]) == e["boxes"] and t(d["scores"]) == e["scores"] and t(d["labels"]) == e["labels"]
    print("== frcnn_r18_oldkeys.pth loads into torchvision and gives the same detections")


def old_mask_keys(model, images, ev):
    """Checks the rename rule the C# side applies (no file): mrcnn_r18's mask head under its pre-0.13 names
    roi_heads.mask_head.mask_fcn{i+1}.* (metadata version 1) loads into torchvision and gives the same masks."""
    state = model.state_dict()
    old = OrderedDict()
    for k, v in state.items():
        m = re.match(r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$", k)
        old[f"roi_heads.mask_head.mask_fcn{int(m.group(1)) + 1}.{m.group(2)}" if m else k] = v
    meta = OrderedDict((k, dict(v)) for k, v in state._metadata.items())
    meta["roi_heads.mask_head"]["version"] = 1
    for k in [k for k in meta if k.startswith("roi_heads.mask_head.")]:
        del meta[k]
    old._metadata = meta
    assert "roi_heads.mask_head.mask_fcn1.weight" in old
    spec = next(c for c in CASES if c["case"] == "mrcnn_r18")
    torch.manual_seed(0)
    fresh, _ = build_frcnn(spec)
    fresh.load_state_dict(old)
    fresh.eval()
    with torch.no_grad():
        dets = fresh(images)
    for d, e, em in zip(dets, ev["detections"], ev["masks"]):
        assert t(d["boxes"]) == e["boxes"] and t(d["scores"]) == e["scores"] and t(d["labels"]) == e["labels"]
        assert [rle_counts((p[0] > 0.5).numpy()) for p in d["masks"]] == [p["counts"] for p in em["pasted"]]
    print("== mrcnn_r18 with the pre-0.13 mask head names loads into torchvision and gives the same masks")


def main():
    only = set(sys.argv[1:])
    results = {}
    for spec in CASES:
        if not only or spec["case"] in only:
            results[spec["case"]] = run_case(spec)
    if "frcnn_r18" in results:
        old_keys(*results["frcnn_r18"])
    if "mrcnn_r18" in results:
        old_mask_keys(*results["mrcnn_r18"])
    total = 0
    for f in sorted(os.listdir(HERE)):
        if f.endswith((".pth", ".json", ".png")):
            p = os.path.join(HERE, f)
            total += os.path.getsize(p)
            with open(p, "rb") as fh:
                print(f"{hashlib.sha256(fh.read()).hexdigest()[:16]}  {os.path.getsize(p):8d}  {f}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
