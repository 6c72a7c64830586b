namespace Runtime.Cli;

/// <summary>The <c>runtime</c> command: dispatches sub-commands and prints usage.</summary>
internal static class CommandLine
{
    public const string Usage = """
        usage: runtime <command> [options]

        commands:
          devices                         list devices: CPU (SIMD width, cores), CUDA and OpenCL (or why unavailable)
          selfcheck --device <cuda:i|opencl:i> [--seed n]
                                          every operator on the device against the CPU, forward and backward
          bench <op> [options]            time an operator; ops: matmul, conv2d, add, mul, relu, exp, sum, softmax
              --device <cpu|cuda:i|opencl:i>   device (default cpu)
              --shape <a,b,...>                matmul: M,N,K or one size for a cube (default 1024)
                                               conv2d: input N,C,H,W (default 8,256,14,14)
                                               add/mul/relu/exp/sum: element count or shape (default 16777216)
                                               softmax: rows,cols (default 4096,1024)
              --dtype <float32|float64>        element type (default float32)
              --threads <n>                    CPU threads (default: all cores)
              --repeat <n>                     timed repetitions (default: enough for ~1 s, at least 5)
              --json                           one JSON object per line instead of a table row
              conv2d only (GFLOP/s count 2 flops per multiply-add, times 3 with --backward):
              --out <n>                        output channels (default: input channels)
              --kernel <k|kh,kw>               kernel size (default 3)
              --stride <s>  --padding <p>  --dilation <d>  --groups <g>   (defaults 1, k/2, 1, 1)
              --backward                       time forward + backward (input, weight and bias gradients)
              e.g. runtime bench conv2d --shape 8,256,14,14 --kernel 3 --out 256 --stride 1 --padding 1
          bench resnet50 [--batch n] [--train] [--size s]
                                          torchvision ResNet-50: eval forward at batch 1 and 8 (224x224), or with
                                          --train one training step (forward, cross-entropy, backward) at batch 8
          draw <coco.json> <image_id|all> --out <folder>   draw COCO ground truth to PNG (options: runtime draw --help)
          convert <in.pth> <out.safetensors>   PyTorch checkpoint (state dict) to safetensors, pickle never executed
          help                            this text
        """;

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 1 : 0;
        }
        try
        {
            return args[0] switch
            {
                "devices" => DevicesCommand.Run(),
                "bench" => BenchCommand.Run(args[1..]),
                "selfcheck" => SelfCheckCommand.Run(args[1..]),
                "draw" => DrawCommand.Run(args[1..]),
                "convert" => ConvertCommand.Run(args[1..]),
                _ => Fail($"unknown command '{args[0]}'"),
            };
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"runtime: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }

    /// <summary>Splits "--name value" pairs and bare flags.</summary>
    public static Dictionary<string, string?> ParseOptions(string[] args, out List<string> positional, params string[] flags)
    {
        var opts = new Dictionary<string, string?>();
        positional = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(a);
                continue;
            }
            var name = a[2..];
            int eq = name.IndexOf('=');
            if (eq >= 0) opts[name[..eq]] = name[(eq + 1)..];
            else if (flags.Contains(name)) opts[name] = null;
            else if (i + 1 < args.Length) opts[name] = args[++i];
            else throw new ArgumentException($"option --{name} needs a value");
        }
        return opts;
    }
}
