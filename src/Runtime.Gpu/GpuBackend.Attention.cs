using System.Runtime.InteropServices;
using Runtime.Backends;

namespace Runtime.Gpu;

// Fused scaled dot-product attention (Kernels/attention.k): the forward and the dq pass run one group
// per (batch*head, query block), the dk/dv pass one per (batch*head, key block); tiles live in local
// memory sized here, so memory stays linear in the sequence lengths and the backward has no atomics.
public abstract partial class GpuBackend
{
    /// <summary>The AttGeom struct of attention.k, passed by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct AttGeom(long B, long H, long L, long S, long D, long Dv,
        long Sb, long Sh, long Sl, long Ss, long Kind, long Causal, long Bq, long Bk);

    /// <summary>Local memory of one attention group, in bytes (ATT_SMEM in attention.k).</summary>
    private const int AttentionLocalBytes = 40960;

    private enum AttPass { Forward, GradQuery, GradKeyValue }

    /// <summary>
    /// The largest square tile (queries = keys = t, a power of two up to 64) whose local buffers fit
    /// ATT_SMEM for this pass.
    /// </summary>
    private static int AttentionTile(AttPass pass, DType t, int d, int dv)
    {
        long budget = AttentionLocalBytes / t.SizeOf();
        // Counted with every row one element longer (the kernels pad key and value rows to an odd stride).
        long dp = d + 1L, dvp = dv + 1L;
        for (int tile = 64; tile >= 1; tile /= 2)
        {
            long need = pass switch
            {
                AttPass.Forward => tile * (2 * dp + 2 * dvp + tile + 3),
                AttPass.GradQuery => tile * (3 * dp + 2 * dvp + tile + 2),
                _ => tile * (3 * dp + 3 * dvp + 2L * tile + 2),
            };
            if (need <= budget) return tile;
        }
        throw new NotSupportedException(
            $"Attention: head sizes D = {d}, Dv = {dv} do not fit the {AttentionLocalBytes}-byte local tile of the GPU kernels ({t.Name()}); use the CPU");
    }

    private static AttGeom AttentionGeometry(TensorView q, TensorView k, TensorView v, AttentionMask mask, int tile)
    {
        long sb = 0, sh = 0, sl = 0, ss = 0;
        if (mask.Kind != AttentionMaskKind.None)
        {
            var st = mask.View.Strides;
            (sb, sh, sl, ss) = (st[0], st[1], st[2], st[3]);
        }
        return new AttGeom(q.Shape[0], q.Shape[1], q.Shape[2], k.Shape[2], q.Shape[3], v.Shape[3], sb, sh, sl, ss,
            (long)mask.Kind, mask.Causal ? 1 : 0, tile, tile);
    }

    /// <summary>The two mask pointers and the mask offset (unused pointers get the query buffer).</summary>
    private KernelArgs AttentionMaskArgs(KernelArgs a, TensorView q, AttentionMask mask) => mask.Kind switch
    {
        AttentionMaskKind.Boolean => a.Buffer(Buf(mask.View)).Buffer(Buf(q)).I64(mask.View.Offset),
        AttentionMaskKind.Additive => a.Buffer(Buf(q)).Buffer(Buf(mask.View)).I64(mask.View.Offset),
        _ => a.Buffer(Buf(q)).Buffer(Buf(q)).I64(0),
    };

    private static KernelArgs AttentionScale(KernelArgs a, DType t, double scale) =>
        t == DType.Float32 ? a.Add((float)scale) : a.Add(scale);

    private int AttentionLocal(KernelFunction k) => Math.Min(256, k.MaxLocalSize);

    public void Attention(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp)
    {
        Require(q.DType, "Attention");
        int tile = AttentionTile(AttPass.Forward, q.DType, q.Shape[3], v.Shape[3]);
        var g = AttentionGeometry(q, k, v, mask, tile);
        long groups = g.B * g.H * ((g.L + tile - 1) / tile);
        lock (Gate)
        {
            Enter();
            var kern = Kernel("attention", GpuDialect.TypeDefines(q.DType), "attention_forward");
            var a = Args().Buffer(Buf(q)).I64(q.Offset).Buffer(Buf(k)).I64(k.Offset).Buffer(Buf(v)).I64(v.Offset);
            AttentionMaskArgs(a, q, mask).Buffer(Buf(output)).I64(output.Offset).Buffer(Buf(logSumExp)).I64(logSumExp.Offset).Add(g);
            LaunchGroups(kern, groups, AttentionLocal(kern), AttentionScale(a, q.DType, scale));
        }
    }

    public void AttentionBackward(TensorView q, TensorView k, TensorView v, AttentionMask mask, double scale, TensorView output, TensorView logSumExp,
        TensorView gradOutput, TensorView gradQ, TensorView gradK, TensorView gradV)
    {
        Require(q.DType, "AttentionBackward");
        int d = q.Shape[3], dv = v.Shape[3];
        int tq = AttentionTile(AttPass.GradQuery, q.DType, d, dv), tkv = AttentionTile(AttPass.GradKeyValue, q.DType, d, dv);
        var gq = AttentionGeometry(q, k, v, mask, tq);
        var gkv = AttentionGeometry(q, k, v, mask, tkv);
        long rows = gq.B * gq.H * gq.L;
        lock (Gate)
        {
            Enter();
            var defines = GpuDialect.TypeDefines(q.DType);
            using var drow = new GpuBuffer(this, Math.Max(1, rows) * q.DType.SizeOf());
            var rowdot = Kernel("attention", defines, "attention_rowdot");
            LaunchItems(rowdot, rows, Args().Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(output)).I64(output.Offset)
                .Buffer(drow.Handle).I64(rows).I64(dv));

            var kdq = Kernel("attention", defines, "attention_dq");
            var a = Args().Buffer(Buf(q)).I64(q.Offset).Buffer(Buf(k)).I64(k.Offset).Buffer(Buf(v)).I64(v.Offset);
            AttentionMaskArgs(a, q, mask).Buffer(Buf(logSumExp)).I64(logSumExp.Offset).Buffer(drow.Handle)
                .Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(gradQ)).I64(gradQ.Offset).Add(gq);
            LaunchGroups(kdq, gq.B * gq.H * ((gq.L + tq - 1) / tq), AttentionLocal(kdq), AttentionScale(a, q.DType, scale));

            var kkv = Kernel("attention", defines, "attention_dkdv");
            a = Args().Buffer(Buf(q)).I64(q.Offset).Buffer(Buf(k)).I64(k.Offset).Buffer(Buf(v)).I64(v.Offset);
            AttentionMaskArgs(a, q, mask).Buffer(Buf(logSumExp)).I64(logSumExp.Offset).Buffer(drow.Handle)
                .Buffer(Buf(gradOutput)).I64(gradOutput.Offset).Buffer(Buf(gradK)).I64(gradK.Offset).Buffer(Buf(gradV)).I64(gradV.Offset).Add(gkv);
            LaunchGroups(kkv, gkv.B * gkv.H * ((gkv.S + tkv - 1) / tkv), AttentionLocal(kkv), AttentionScale(a, q.DType, scale));
        }
    }
}
