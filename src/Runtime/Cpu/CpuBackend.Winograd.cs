using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Runtime.Autograd;
using Runtime.Backends;

namespace Runtime.Cpu;

/// <summary>
/// Winograd F(4x4, 3x3) for float32 3x3 stride-1 convolutions (Lavin and Gray 2016): each 4x4 output tile comes from
/// a 6x6 input tile through 36 products instead of 144, which turns the convolution into 36 matrix products
/// <c>M[xi] (Cout x tiles) = U[xi] (Cout x Cin) V[xi] (Cin x tiles)</c>, one per point xi of the 6x6 transform domain.
/// <list type="bullet">
/// <item>Weights: <c>U = G g G^T</c> per (output, input) channel pair, computed in float64 and stored straight in the
/// GEMM micro-kernel's A-sliver layout. For inference (no gradient wanted) the transformed weights are kept with the
/// weight tensor and reused until its <see cref="Storage.Version"/> changes.</item>
/// <item>Input: the images are copied once into a zero-padded layout whose side is 4 x tiles + 2, so that every 6x6
/// tile lies inside it; a chunk of tiles is then gathered 8 tiles to a vector, transformed (<c>B^T d B</c>) and
/// written straight in the micro-kernel's B-sliver layout (the transform is the packing).</item>
/// <item>Products: the 36 products of a chunk run on the micro-kernel of <see cref="Gemm"/>, with no further packing.</item>
/// <item>Output: <c>A^T m A</c>, then the epilogue (bias, residual sum, ReLU) before the 4x4 tile is stored.</item>
/// </list>
/// Chunks of tiles go to separate threads, each with its own transform buffers. The transforms use the points 0,
/// +-1, +-2 and infinity; float32 results differ from a float64 direct convolution by about 1e-6 of the output's
/// scale on ResNet-like weights (the accuracy is documented in docs/conv.md). <see cref="WinogradApplies"/> states
/// when this path is taken.
/// </summary>
internal sealed unsafe partial class CpuBackend
{
    /// <summary>When a convolution takes one of the specialised forward paths (Winograd, pixel-major).</summary>
    internal enum PathPolicy
    {
        /// <summary>Where the path's size rule says it wins (the default).</summary>
        Auto,

        /// <summary>Never (the environment variables RUNTIME_WINOGRAD=0 and RUNTIME_PIXEL_MAJOR=0 start with this).</summary>
        Off,

        /// <summary>On every shape it can run (tests).</summary>
        Always,
    }

    /// <summary>The path choice for 3x3 stride-1 float32 convolutions; benchmarks and tests switch it to compare paths.</summary>
    internal static PathPolicy Winograd { get; set; } = Environment.GetEnvironmentVariable("RUNTIME_WINOGRAD") == "0" ? PathPolicy.Off : PathPolicy.Auto;

    /// <summary>Tiles per chunk: the B panel of one transform point (Cin x tiles) stays in L2.</summary>
    private const int WinogradChunk = 64;

    /// <summary>Input channels per block of the products (A sliver 8 x 256 in L1, B sliver 256 x 32 in L2).</summary>
    private const int WinogradKc = 256;

    /// <summary>
    /// The rule for taking the Winograd path (float32; 3x3, stride 1, dilation 1, one group; AVX2 + FMA for the tile
    /// loads): at least 16 input and output channels and at least 16 tiles of 4x4 outputs over the batch. With fewer
    /// tiles (a 7x7 map at batch 1 has 4), streaming the transformed weights (4x the weight) costs more than the
    /// products save, and the GEMM paths win. Measured on 2 cores (docs/conv.md).
    /// </summary>
    internal static bool WinogradApplies(Conv2dGeometry g, DType dtype)
    {
        if (Winograd == PathPolicy.Off || dtype != DType.Float32 || !Avx2.IsSupported || !Fma.IsSupported) return false;
        if (g.KernelH != 3 || g.KernelW != 3 || g.StrideH != 1 || g.StrideW != 1 || g.DilationH != 1 || g.DilationW != 1 || g.Groups != 1) return false;
        long padded = (long)g.Batch * g.InChannels * WinogradSide(g.OutHeight) * WinogradSide(g.OutWidth);
        if (g.OutHeight < 1 || g.OutWidth < 1 || padded >= int.MaxValue) return false;
        if (Winograd == PathPolicy.Always) return true;
        if (g.InChannels < 16 || g.OutChannels < 16) return false;
        long tiles = (long)g.Batch * ((g.OutHeight + 3) / 4) * ((g.OutWidth + 3) / 4);
        return tiles >= 16;
    }

    /// <summary>
    /// The micro-kernel of the products: the widest (AVX-512, 32 tiles a sliver), or with fewer than 32 tiles the
    /// AVX2 one (16 tiles a sliver), so that a 14x14 map at batch 1 (16 tiles) does not compute a sliver of which half
    /// is padding.
    /// </summary>
    private static Gemm.Config<float> WinogradKernel(Conv2dGeometry g)
    {
        var best = Gemm.SingleConfigs[0];
        long tiles = (long)g.Batch * ((g.OutHeight + 3) / 4) * ((g.OutWidth + 3) / 4);
        if (tiles >= best.NR || best.NR <= 16) return best;
        return Array.Find(Gemm.SingleConfigs, c => c.NR == 16) ?? best;
    }

    private static int WinogradSide(int outSize) => (outSize + 3) / 4 * 4 + 2;

    /// <summary>y = conv3x3(x, w) (+ bias) (+ residual), then ReLU when asked, by F(4x4, 3x3). Caller checked <see cref="WinogradApplies"/>.</summary>
    internal static void WinogradForward(float* x, TensorView weight, float* bias, float* residual, bool relu, float* y, Conv2dGeometry g)
    {
        var cfg = WinogradKernel(g);
        int mr = cfg.MR, nr = cfg.NR;
        int K = g.OutChannels, C = g.InChannels;
        int kp = (K + mr - 1) / mr * mr;
        int tilesH = (g.OutHeight + 3) / 4, tilesW = (g.OutWidth + 3) / 4;
        long tiles = (long)g.Batch * tilesH * tilesW;
        int chunk = (int)((Math.Min(WinogradChunk, tiles) + nr - 1) / nr * nr);
        int hp = tilesH * 4 + 2, wp = tilesW * 4 + 2;

        // U: built for this call when training, else cached with the weight (PackedWeights, keyed by its version).
        long uLength = 36L * kp * C;
        float* w = (float*)Ptr(weight);
        using var own = new Scratch<float>(GradMode.IsEnabled ? uLength : 0);
        var cached = GradMode.IsEnabled ? null
            : PackedWeights.Derived<float>(weight.Storage, w, K, C, (WinogradKind, cfg), uLength, p => TransformWeights(w, K, C, kp, mr, (float*)p));
        float* u = cached != null ? (float*)cached.Packed : own.Pointer;
        if (cached == null) TransformWeights(w, K, C, kp, mr, u);

        // Zero-padded images [N, C, hp, wp].
        long planeP = (long)hp * wp;
        using var padded = new Scratch<float>(g.Batch * C * planeP + 16); // + the over-read of LoadRun
        float* xp = padded.Pointer;
        Chunked((long)g.Batch * C, 4, (s, e) =>
        {
            for (long nc = s; nc < e; nc++)
            {
                float* dst = xp + nc * planeP;
                float* src = x + nc * g.InPlane;
                new Span<float>(dst, (int)(g.PadH * (long)wp)).Clear();
                for (int r = g.PadH; r < hp; r++)
                {
                    float* d = dst + (long)r * wp;
                    int ih = r - g.PadH;
                    if (ih >= g.Height)
                    {
                        new Span<float>(d, wp).Clear();
                        continue;
                    }
                    new Span<float>(d, g.PadW).Clear();
                    new ReadOnlySpan<float>(src + (long)ih * g.Width, g.Width).CopyTo(new Span<float>(d + g.PadW, g.Width));
                    new Span<float>(d + g.PadW + g.Width, wp - g.PadW - g.Width).Clear();
                }
            }
        });

        long chunks = (tiles + chunk - 1) / chunk;
        var layout = new WinogradLayout(g, K, C, kp, chunk, tilesH, tilesW, hp, wp, mr, nr);
        int threads = CpuParallel.Threads;
        if (threads == 1 || chunks >= 4 * threads || chunks % threads == 0)
        {
            // Whole chunks to each thread: no synchronisation between the stages.
            CpuParallel.For(chunks, 1, (s, e) =>
            {
                using var v = new Scratch<float>(36L * layout.VPoint);
                using var m = new Scratch<float>(36L * layout.MPoint);
                var offsets = stackalloc int[chunk];
                var runs = stackalloc int[3 * (chunk / 8)];
                for (long ch = s; ch < e; ch++)
                {
                    long t0 = ch * chunk;
                    int count = (int)Math.Min(chunk, tiles - t0);
                    layout.TileOffsets(t0, count, offsets, runs);
                    layout.InputTransform(xp, offsets, runs, v.Pointer, 0, C);
                    layout.Products(cfg, u, v.Pointer, m.Pointer, 0, kp / mr);
                    layout.OutputTransform(m.Pointer, t0, count, bias, residual, relu, y, 0, K);
                }
            });
        }
        else
        {
            // Few chunks: each stage of a chunk is split over the threads (input channels, output-channel slivers,
            // output channels).
            using var v = new Scratch<float>(36L * layout.VPoint);
            using var m = new Scratch<float>(36L * layout.MPoint);
            var offsets = new int[chunk];
            var runs = new int[3 * (chunk / 8)];
            float* vp = v.Pointer, mp = m.Pointer;
            for (long ch = 0; ch < chunks; ch++)
            {
                long t0 = ch * chunk;
                int count = (int)Math.Min(chunk, tiles - t0);
                fixed (int* o = offsets, r = runs)
                    layout.TileOffsets(t0, count, o, r);
                CpuParallel.For(C, 8, (s, e) =>
                {
                    fixed (int* o = offsets, r = runs)
                        layout.InputTransform(xp, o, r, vp, (int)s, (int)e);
                });
                CpuParallel.For(kp / mr, 1, (s, e) => layout.Products(cfg, u, vp, mp, (int)s, (int)e));
                CpuParallel.For(K, 8, (s, e) => layout.OutputTransform(mp, t0, count, bias, residual, relu, y, (int)s, (int)e));
            }
        }
    }

    /// <summary>The sizes and buffer layouts of one Winograd convolution, and its three stages on one chunk of tiles.</summary>
    private readonly struct WinogradLayout(Conv2dGeometry g, int k, int c, int kp, int chunk, int tilesH, int tilesW, int hp, int wp, int mr, int nr)
    {
        private int TilesPerImage => tilesH * tilesW;

        /// <summary>
        /// Elements between consecutive points xi of V and M: a panel plus one cache line, so the 36 points of a tile
        /// do not all fall on the same L1 sets (panels are powers of two for the usual channel counts).
        /// </summary>
        public long VPoint => (long)c * chunk + 16;

        public long MPoint => (long)kp * chunk + 16;

        /// <summary>
        /// Within each group of 8 tiles, vector lane j holds tile <c>Lanes[j]</c> of the group everywhere (V, M): the
        /// order in which the even/odd deinterleave of a run of tiles in one row delivers them.
        /// </summary>
        private static ReadOnlySpan<int> Lanes => [0, 2, 4, 6, 1, 3, 5, 7];

        /// <summary>
        /// Offsets (in padded elements from channel 0 of image 0) of each lane's tile's top-left input, tiles past the
        /// end reading tile t0; and for each whole group of 8 whether its tiles lie in at most two runs of
        /// consecutive tiles of one row (runs[3 g] the first tile's offset, else -1; runs[3 g + 2] the tile a where the
        /// second run starts, 8 for none; runs[3 g + 1] the offset the second run would have at tile 0, so that
        /// loading 8 tiles from there puts its tiles in their lanes).
        /// </summary>
        public void TileOffsets(long t0, int count, int* offsets, int* runs)
        {
            long planeP = (long)hp * wp;
            var natural = stackalloc int[8];
            for (int grp = 0; grp < chunk / 8; grp++)
            {
                for (int l = 0; l < 8; l++)
                {
                    int i = grp * 8 + l;
                    long t = i < count ? t0 + i : t0;
                    long n = t / TilesPerImage;
                    int r = (int)(t % TilesPerImage);
                    int ty = r / tilesW, tx = r % tilesW;
                    natural[l] = (int)(n * c * planeP + (long)ty * 4 * wp + tx * 4);
                }
                // One run (a = 8), or two runs split at tile a (a row ends inside the group), or neither (-1).
                int a = 1;
                while (a < 8 && natural[a] == natural[0] + 4 * a) a++;
                int b = a + 1;
                while (b < 8 && natural[b] == natural[a] + 4 * (b - a)) b++;
                bool whole = grp * 8 + 8 <= count;
                runs[3 * grp] = whole && b >= 8 ? natural[0] : -1;
                runs[3 * grp + 1] = a < 8 ? natural[a] - 4 * a : 0;
                runs[3 * grp + 2] = a;
                for (int j = 0; j < 8; j++) offsets[grp * 8 + j] = natural[Lanes[j]];
            }
        }

        /// <summary>Channel blocks of the products: <paramref name="block"/> channels from <paramref name="c0"/>.</summary>
        private static int BlockSize(int channels)
        {
            int blocks = (channels + WinogradKc - 1) / WinogradKc;
            return (channels + blocks - 1) / blocks;
        }

        /// <summary>
        /// V[xi] for every tile of the chunk and every input channel, in B-sliver layout: point xi, channel block
        /// [c0, c0 + kc), sliver js hold <c>v[xi*C*chunk + c0*chunk + js*nr*kc + (ci - c0)*nr + lane]</c>.
        /// </summary>
        public void InputTransform(float* xp, int* offsets, int* runs, float* v, int ciStart, int ciEnd)
        {
            long planeP = (long)hp * wp;
            int kcb = BlockSize(c);
            long point = VPoint;
            var idx = stackalloc Vector256<int>[36];
            var d = stackalloc Vector256<float>[36];
            var d2 = stackalloc Vector256<float>[36];
            var t = stackalloc Vector256<float>[36];
            for (int c0 = ciStart / kcb * kcb; c0 < ciEnd; c0 += kcb)
            {
                int kc = Math.Min(kcb, c - c0);
                int from = Math.Max(c0, ciStart) - c0, to = Math.Min(c0 + kc, ciEnd) - c0;
                for (int lane0 = 0; lane0 < chunk; lane0 += 8)
                {
                    int run = runs[3 * (lane0 / 8)], run2 = runs[3 * (lane0 / 8) + 1], split = runs[3 * (lane0 / 8) + 2];
                    // Lanes taken from the second run: those holding tiles split .. 7.
                    var second = Vector256.GreaterThanOrEqual(Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7), Vector256.Create(split)).AsSingle();
                    if (run < 0)
                    {
                        var baseIdx = Vector256.Load(offsets + lane0);
                        for (int r = 0; r < 6; r++)
                            for (int s = 0; s < 6; s++)
                                idx[r * 6 + s] = baseIdx + Vector256.Create(r * wp + s);
                    }
                    int js = lane0 / nr, lane = lane0 % nr;
                    float* dst0 = v + (long)c0 * chunk + (long)js * nr * kc + lane;
                    for (int ci = from; ci < to; ci++)
                    {
                        float* src = xp + (c0 + ci) * planeP;
                        if (run >= 0)
                        {
                            LoadRun(src + run, wp, d);
                            if (split < 8)
                            {
                                LoadRun(src + run2, wp, d2);
                                for (int q = 0; q < 36; q++) d[q] = Vector256.ConditionalSelect(second, d2[q], d[q]);
                            }
                        }
                        else
                            for (int q = 0; q < 36; q++) d[q] = Avx2.GatherVector256(src, idx[q], 4);
                        TransformInputTile(d, t, dst0 + (long)ci * nr, point);
                    }
                }
            }
        }

        /// <summary>
        /// The 6x6 inputs of 8 tiles that follow each other in one row (tile l starts at src + 4 l), as d[r*6 + s]
        /// with lanes in <see cref="Lanes"/> order: per input row, the 32 values from the first tile's corner are
        /// deinterleaved into the four phases s = 0..3, and those from 4 further on give s = 4, 5. Reads up to 36
        /// values per row (the padded buffer has a spare line at its end).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void LoadRun(float* src, int wp, Vector256<float>* d)
        {
            for (int r = 0; r < 6; r++)
            {
                float* p = src + (long)r * wp;
                var a0 = Vector256.Load(p);
                var a1 = Vector256.Load(p + 8);
                var a2 = Vector256.Load(p + 16);
                var a3 = Vector256.Load(p + 24);
                var t0 = Avx.UnpackLow(a0, a1);   // x0 x8 x1 x9 | x4 x12 x5 x13
                var t1 = Avx.UnpackHigh(a0, a1);  // x2 x10 x3 x11 | x6 x14 x7 x15
                var t2 = Avx.UnpackLow(a2, a3);   // x16 x24 x17 x25 | x20 x28 x21 x29
                var t3 = Avx.UnpackHigh(a2, a3);
                Vector256<float>* row = d + r * 6;
                row[0] = Avx.Shuffle(t0, t2, 0x44); // x0 x8 x16 x24 | x4 x12 x20 x28: tiles 0 2 4 6 | 1 3 5 7
                row[1] = Avx.Shuffle(t0, t2, 0xEE);
                row[2] = Avx.Shuffle(t1, t3, 0x44);
                row[3] = Avx.Shuffle(t1, t3, 0xEE);
                var b0 = Vector256.Load(p + 4);
                var b1 = Vector256.Load(p + 12);
                var b2 = Vector256.Load(p + 20);
                var b3 = Vector256.Load(p + 28);
                var u0 = Avx.UnpackLow(b0, b1);
                var u2 = Avx.UnpackLow(b2, b3);
                row[4] = Avx.Shuffle(u0, u2, 0x44);
                row[5] = Avx.Shuffle(u0, u2, 0xEE);
            }
        }

        /// <summary>B^T d B of 8 tiles (d[r*6 + s] their inputs), stored at dst + xi * pointStride for the 36 points.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void TransformInputTile(Vector256<float>* d, Vector256<float>* t, float* dst, long pointStride)
        {
            // Columns first: t[i][s] = sum_r BT[i][r] d[r][s].
            for (int s = 0; s < 6; s++)
                Bt(d[s], d[6 + s], d[12 + s], d[18 + s], d[24 + s], d[30 + s], out t[s], out t[6 + s], out t[12 + s], out t[18 + s], out t[24 + s], out t[30 + s]);
            // Then rows: v[i][j] = sum_s t[i][s] BT[j][s].
            for (int i = 0; i < 6; i++)
            {
                Vector256<float>* row = t + i * 6;
                Bt(row[0], row[1], row[2], row[3], row[4], row[5], out var v0, out var v1, out var v2, out var v3, out var v4, out var v5);
                float* o = dst + i * 6 * pointStride;
                Vector256.Store(v0, o);
                Vector256.Store(v1, o + pointStride);
                Vector256.Store(v2, o + 2 * pointStride);
                Vector256.Store(v3, o + 3 * pointStride);
                Vector256.Store(v4, o + 4 * pointStride);
                Vector256.Store(v5, o + 5 * pointStride);
            }
        }

        /// <summary>
        /// The 6-point input transform B^T of F(4, 3) (points 0, 1, -1, 2, -2, infinity):
        /// [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Bt(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3, Vector256<float> d4, Vector256<float> d5,
            out Vector256<float> r0, out Vector256<float> r1, out Vector256<float> r2, out Vector256<float> r3, out Vector256<float> r4, out Vector256<float> r5)
        {
            var four = Vector256.Create(4f);
            var five = Vector256.Create(5f);
            var two = Vector256.Create(2f);
            r0 = Fma.MultiplyAdd(four, d0, Fma.MultiplyAddNegated(five, d2, d4));       // 4 d0 - 5 d2 + d4
            var a = Fma.MultiplyAddNegated(four, d2, d4);                               // d4 - 4 d2
            var b = Fma.MultiplyAddNegated(four, d1, d3);                               // d3 - 4 d1
            r1 = a + b;                                                                 // -4 d1 - 4 d2 + d3 + d4
            r2 = a - b;                                                                 // 4 d1 - 4 d2 - d3 + d4
            var p = d4 - d2;
            var q = two * (d3 - d1);
            r3 = p + q;                                                                 // -2 d1 - d2 + 2 d3 + d4
            r4 = p - q;                                                                 // 2 d1 - d2 - 2 d3 + d4
            r5 = Fma.MultiplyAdd(four, d1, Fma.MultiplyAddNegated(five, d3, d5));       // 4 d1 - 5 d3 + d5
        }

        /// <summary>M[xi] = U[xi] V[xi] for the 36 points: M laid out [36][kp][chunk].</summary>
        public void Products(Gemm.Config<float> cfg, float* u, float* v, float* m, int sStart, int sEnd)
        {
            int kcb = BlockSize(c);
            var kernel = cfg.Kernel;
            for (int xi = 0; xi < 36; xi++)
            {
                float* uxi = u + (long)xi * kp * c, vxi = v + xi * VPoint, mxi = m + xi * MPoint;
                // Each A sliver (8 output channels x kc) stays in L1 while it meets every B sliver of the panel (in L2).
                for (int c0 = 0; c0 < c; c0 += kcb)
                {
                    int kc = Math.Min(kcb, c - c0);
                    float* ublock = uxi + (long)c0 * kp, vblock = vxi + (long)c0 * chunk;
                    for (int s = sStart; s < sEnd; s++)
                    {
                        float* ap = ublock + (long)s * mr * kc, mrow = mxi + (long)s * mr * chunk;
                        for (int js = 0; js < chunk / nr; js++)
                            kernel(kc, ap, vblock + (long)js * nr * kc, mrow + js * nr, chunk, c0 > 0);
                    }
                }
            }
        }

        /// <summary>A^T m A for every output channel and tile of the chunk, plus the epilogue, stored into y.</summary>
        public void OutputTransform(float* m, long t0, int count, float* bias, float* residual, bool relu, float* y, int kStart, int kEnd)
        {
            long pointStride = MPoint;
            int oh = g.OutHeight, ow = g.OutWidth;
            long outPlane = (long)oh * ow;
            var o = stackalloc float[16 * 8];
            var s = stackalloc Vector256<float>[24];
            var rowsOut = stackalloc Vector128<float>[8];
            // Where each tile's outputs start (channel 0), its corner, and whether groups of 8 tiles are all whole.
            var at0 = stackalloc long[chunk];
            var tileY = stackalloc int[chunk];
            var tileX = stackalloc int[chunk];
            var full = stackalloc bool[chunk / 8];
            for (int l = 0; l < count; l++)
            {
                long t = t0 + l;
                long n = t / TilesPerImage;
                int r = (int)(t % TilesPerImage);
                tileY[l] = r / tilesW * 4;
                tileX[l] = r % tilesW * 4;
                at0[l] = n * k * outPlane + (long)tileY[l] * ow + tileX[l];
            }
            for (int grp = 0; grp < chunk / 8; grp++)
            {
                bool whole = grp * 8 + 8 <= count;
                for (int l = grp * 8; whole && l < grp * 8 + 8; l++) whole = tileY[l] + 4 <= oh && tileX[l] + 4 <= ow;
                full[grp] = whole;
            }
            for (int ko = kStart; ko < kEnd; ko++)
            {
                var b = Vector256.Create(bias != null ? bias[ko] : 0f);
                for (int lane0 = 0; lane0 < count; lane0 += 8)
                {
                    float* src = m + (long)ko * chunk + lane0;
                    // Columns: s[i][j] = sum_r AT[i][r] m[r][j] for the six transform rows r (the points xi = 6 r + j).
                    for (int j = 0; j < 6; j++)
                    {
                        At(Vector256.Load(src + j * pointStride), Vector256.Load(src + (6 + j) * pointStride), Vector256.Load(src + (12 + j) * pointStride),
                           Vector256.Load(src + (18 + j) * pointStride), Vector256.Load(src + (24 + j) * pointStride), Vector256.Load(src + (30 + j) * pointStride),
                           out s[j], out s[6 + j], out s[12 + j], out s[18 + j]);
                    }
                    for (int i = 0; i < 4; i++)
                    {
                        Vector256<float>* row = s + i * 6;
                        At(row[0], row[1], row[2], row[3], row[4], row[5], out var o0, out var o1, out var o2, out var o3);
                        Vector256.Store(o0 + b, o + (i * 4) * 8);
                        Vector256.Store(o1 + b, o + (i * 4 + 1) * 8);
                        Vector256.Store(o2 + b, o + (i * 4 + 2) * 8);
                        Vector256.Store(o3 + b, o + (i * 4 + 3) * 8);
                    }
                    int lanes = Math.Min(8, count - lane0);
                    long plane = ko * outPlane;
                    if (lanes == 8 && full[lane0 / 8])
                    {
                        // Eight whole 4x4 tiles: each row of four outputs is one 128-bit store.
                        for (int i = 0; i < 4; i++)
                        {
                            Transpose4x8(Vector256.Load(o + (i * 4) * 8), Vector256.Load(o + (i * 4 + 1) * 8), Vector256.Load(o + (i * 4 + 2) * 8),
                                Vector256.Load(o + (i * 4 + 3) * 8), rowsOut);
                            for (int l = 0; l < 8; l++)
                            {
                                long at = at0[lane0 + Lanes[l]] + plane + (long)i * ow;
                                var val = rowsOut[l];
                                if (residual != null) val += Vector128.Load(residual + at);
                                if (relu) val = Vector128.Max(val, Vector128<float>.Zero);
                                Vector128.Store(val, y + at);
                            }
                        }
                        continue;
                    }
                    for (int l = 0; l < 8; l++)
                    {
                        int tile = lane0 + Lanes[l];
                        if (tile >= count) continue;
                        int rows = Math.Min(4, oh - tileY[tile]), cols = Math.Min(4, ow - tileX[tile]);
                        long at = at0[tile] + plane;
                        for (int i = 0; i < rows; i++)
                        {
                            float* dst = y + at + (long)i * ow;
                            float* res = residual != null ? residual + at + (long)i * ow : null;
                            for (int j = 0; j < cols; j++)
                            {
                                float val = o[(i * 4 + j) * 8 + l];
                                if (res != null) val += res[j];
                                dst[j] = relu ? MathF.Max(val, 0f) : val;
                            }
                        }
                    }
                }
            }
        }

        /// <summary>Rows r0..r3 of eight lanes to eight 4-vectors: result l = (r0[l], r1[l], r2[l], r3[l]).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose4x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3, Vector128<float>* result)
        {
            var a = Avx.UnpackLow(r0, r1);   // r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]
            var b = Avx.UnpackHigh(r0, r1);  // r0[2] r1[2] r0[3] r1[3] | r0[6] r1[6] r0[7] r1[7]
            var c = Avx.UnpackLow(r2, r3);
            var d = Avx.UnpackHigh(r2, r3);
            var t0 = Avx.Shuffle(a, c, 0x44); // lanes 0 | 4
            var t1 = Avx.Shuffle(a, c, 0xEE); // lanes 1 | 5
            var t2 = Avx.Shuffle(b, d, 0x44); // lanes 2 | 6
            var t3 = Avx.Shuffle(b, d, 0xEE); // lanes 3 | 7
            result[0] = t0.GetLower();
            result[1] = t1.GetLower();
            result[2] = t2.GetLower();
            result[3] = t3.GetLower();
            result[4] = t0.GetUpper();
            result[5] = t1.GetUpper();
            result[6] = t2.GetUpper();
            result[7] = t3.GetUpper();
        }

        /// <summary>The output transform A^T of F(4, 3): [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void At(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3, Vector256<float> m4, Vector256<float> m5,
            out Vector256<float> o0, out Vector256<float> o1, out Vector256<float> o2, out Vector256<float> o3)
        {
            var sum12 = m1 + m2;
            var dif12 = m1 - m2;
            var sum34 = m3 + m4;
            var dif34 = m3 - m4;
            o0 = m0 + sum12 + sum34;
            o1 = Fma.MultiplyAdd(Vector256.Create(2f), dif34, dif12);
            o2 = Fma.MultiplyAdd(Vector256.Create(4f), sum34, sum12);
            o3 = Fma.MultiplyAdd(Vector256.Create(8f), dif34, dif12) + m5;
        }
    }

    /// <summary>Names the Winograd-transformed form of a weight among the cached forms of <see cref="PackedWeights"/>.</summary>
    private static readonly object WinogradKind = new();

    /// <summary>
    /// U = G g G^T in float64 for every (output, input) channel pair, in the micro-kernel's A-sliver layout
    /// (<c>u[xi*kp*C + c0*kp + s*mr*kc + (ci - c0)*mr + r]</c> for output channel s*mr + r, zero past Cout).
    /// </summary>
    private static void TransformWeights(float* w, int k, int c, int kp, int mr, float* u)
    {
        NativeMemory.Clear(u, (nuint)(36L * kp * c * sizeof(float)));
        int blocks = (c + WinogradKc - 1) / WinogradKc, kcb = (c + blocks - 1) / blocks;
        CpuParallel.For(k, 8, (s, e) =>
        {
            Span<double> gg = stackalloc double[18];
            Span<double> row = stackalloc double[6];
            for (long ko = s; ko < e; ko++)
            {
                int sl = (int)ko / mr, r = (int)ko % mr;
                for (int ci = 0; ci < c; ci++)
                {
                    float* g9 = w + (ko * c + ci) * 9;
                    // gg = G g (6 x 3), then G gg^T (6 x 6).
                    for (int col = 0; col < 3; col++)
                    {
                        double a0 = g9[col], a1 = g9[3 + col], a2 = g9[6 + col];
                        GColumn(a0, a1, a2, gg, col);
                    }
                    int c0 = ci / kcb * kcb, kc = Math.Min(kcb, c - c0);
                    long at = (long)c0 * kp + (long)sl * mr * kc + (long)(ci - c0) * mr + r;
                    for (int i = 0; i < 6; i++)
                    {
                        GColumn(gg[i * 3], gg[i * 3 + 1], gg[i * 3 + 2], row, 0, stride: 1);
                        for (int j = 0; j < 6; j++) u[(long)(i * 6 + j) * kp * c + at] = (float)row[j];
                    }
                }
            }
        });
    }

    /// <summary>G (a0, a1, a2)^T, G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1], into dst[i*stride + col].</summary>
    private static void GColumn(double a0, double a1, double a2, Span<double> dst, int col, int stride = 3)
    {
        dst[col] = a0 / 4;
        dst[stride + col] = -(a0 + a1 + a2) / 6;
        dst[2 * stride + col] = -(a0 - a1 + a2) / 6;
        dst[3 * stride + col] = a0 / 24 + a1 / 12 + a2 / 6;
        dst[4 * stride + col] = a0 / 24 - a1 / 12 + a2 / 6;
        dst[5 * stride + col] = a2;
    }
}
