using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Runtime.Cpu;

/// <summary>
/// The CPU kernels' own worker threads. One forward pass of a network makes hundreds of fork-joins, many of them a
/// fraction of a millisecond long; handing each to the .NET thread pool wakes a sleeping thread every time, and on a
/// virtual machine waking an idle virtual CPU costs tens of microseconds and jitters. These workers instead spin for a
/// short while after each job (<see cref="SpinMicroseconds"/>, as OpenMP runtimes do), so back-to-back kernels find
/// them awake, and only then sleep.
/// </summary>
/// <remarks>
/// <para>A job is a count of parts claimed one at a time from a shared counter by the calling thread and the workers
/// that join; the caller always takes part, so a worker that is late (or parked by the OS) only means the caller runs
/// more of the parts, and a job never waits for a thread that has not begun.</para>
/// <para>One job runs at a time. A fork-join made while the pool is busy (from inside a job, or from a second thread
/// of the application at the same moment) runs its parts on its own thread, in order: the same results, no deadlock.</para>
/// </remarks>
internal static class WorkerPool
{
    private static readonly object Gate = new();
    private static readonly List<Thread> Workers = new();
    private static Job? _current;
    private static long _generation;
    private static int _sleepers;
    private static int _busy;

    [ThreadStatic] private static bool t_isWorker;

    /// <summary>How long an idle worker spins for the next job before it sleeps (RUNTIME_SPIN_US, default 2000).</summary>
    public static int SpinMicroseconds { get; set; } = ReadSpin();

    private static int ReadSpin()
        => int.TryParse(Environment.GetEnvironmentVariable("RUNTIME_SPIN_US"), out int us) && us >= 0 ? us : 2000;

    /// <summary>
    /// Calls <paramref name="body"/>(part) once for every part in [0, <paramref name="parts"/>), on at most
    /// <paramref name="threads"/> threads including the caller (and no more than the machine has cores: spinning
    /// workers beyond that would only take turns), and returns when all have finished. The first exception
    /// thrown by a part is rethrown here (the remaining parts still run).
    /// </summary>
    public static void Run(int parts, int threads, Action<int> body)
    {
        if (parts <= 0) return;
        threads = Math.Min(Math.Min(threads, parts), Environment.ProcessorCount);
        if (threads <= 1 || t_isWorker || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            RunInline(parts, body);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            var job = new Job(body, parts, threads - 1);
            Volatile.Write(ref _current, job);
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Gate) Monitor.PulseAll(Gate);
            job.Work();
            job.WaitForParts();
            Volatile.Write(ref _current, null);
            job.Error?.Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>All the parts on the calling thread, in order, with the same error rule as a pooled job.</summary>
    private static void RunInline(int parts, Action<int> body)
    {
        ExceptionDispatchInfo? error = null;
        for (int i = 0; i < parts; i++)
        {
            try
            {
                body(i);
            }
            catch (Exception e)
            {
                error ??= ExceptionDispatchInfo.Capture(e);
            }
        }
        error?.Throw();
    }

    private static void EnsureWorkers(int count)
    {
        if (Workers.Count >= count) return;
        lock (Workers)
        {
            while (Workers.Count < count)
            {
                var t = new Thread(WorkerLoop) { IsBackground = true, Name = $"runtime-cpu-{Workers.Count + 1}" };
                Workers.Add(t);
                t.Start();
            }
        }
    }

    private static void WorkerLoop()
    {
        t_isWorker = true;
        long seen = Volatile.Read(ref _generation);
        while (true)
        {
            long gen = WaitForJob(seen);
            seen = gen;
            var job = Volatile.Read(ref _current);
            if (job != null && job.Join()) job.Work();
        }
    }

    /// <summary>Spins until the generation moves past <paramref name="seen"/>, then sleeps on the gate if it has not.</summary>
    private static long WaitForJob(long seen)
    {
        long gen;
        long deadline = Stopwatch.GetTimestamp() + SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
        int spins = 0;
        while ((gen = Volatile.Read(ref _generation)) == seen)
        {
            Thread.SpinWait(20);
            if ((++spins & 63) == 0 && Stopwatch.GetTimestamp() > deadline) break;
        }
        if (gen != seen) return gen;
        lock (Gate)
        {
            // A full fence between announcing the sleeper and re-reading the generation: the caller bumps the
            // generation and then reads the sleeper count, so one of the two always sees the other.
            Interlocked.Increment(ref _sleepers);
            while ((gen = Volatile.Read(ref _generation)) == seen) Monitor.Wait(Gate);
            Interlocked.Decrement(ref _sleepers);
        }
        return gen;
    }

    private sealed class Job(Action<int> body, int parts, int helpers)
    {
        private int _next = -1;
        private int _joined;
        private int _done;
        public ExceptionDispatchInfo? Error;

        /// <summary>True when a worker may take part (at most <c>helpers</c> workers do).</summary>
        public bool Join() => Interlocked.Increment(ref _joined) <= helpers;

        /// <summary>Claims and runs parts until none is left.</summary>
        public void Work()
        {
            int part;
            while ((part = Interlocked.Increment(ref _next)) < parts)
            {
                try
                {
                    body(part);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref Error, ExceptionDispatchInfo.Capture(e), null);
                }
                Interlocked.Increment(ref _done);
            }
        }

        /// <summary>Waits (spinning, the parts left being already under way) until every part has finished.</summary>
        public void WaitForParts()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < parts) spin.SpinOnce(sleep1Threshold: -1);
        }
    }
}
