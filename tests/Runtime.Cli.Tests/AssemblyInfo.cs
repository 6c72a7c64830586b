// The command sets process-wide state (CpuParallel.Threads, the CPU worker pool, the backend cache), so its
// runs go one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
