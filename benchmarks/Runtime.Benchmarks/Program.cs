using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Runtime.Benchmarks.CoreBenchmarks).Assembly).Run(args);
