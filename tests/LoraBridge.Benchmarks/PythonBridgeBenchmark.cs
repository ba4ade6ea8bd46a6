using System.Diagnostics;
using System.Globalization;
using LoraBridge.Python;

namespace LoraBridge.Benchmarks;

/// <summary>
/// `python-bridge`: C#→Python call round-trip on the Python thread, the queue hop of InvokeAsync, and moving
/// 64 MiB into and out of a torch tensor, against a C# memcpy of 64 MiB measured in the same run.
/// Options: --python PATH (else discovery), --repeats N (default 15).
/// </summary>
internal static class PythonBridgeBenchmark
{
    private const int Bytes = 64 << 20;

    public static int Run(string[] args)
    {
        string? python = null;
        int repeats = 15;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--python" && i + 1 < args.Length) python = args[++i];
            else if (args[i] == "--repeats" && i + 1 < args.Length) repeats = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else { Console.Error.WriteLine($"python-bridge: unknown argument '{args[i]}' (expected --python PATH, --repeats N)"); return 2; }
        }
        using var runtime = PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = python }).GetAwaiter().GetResult();
        var bridge = new PythonBridge(runtime);
        var info = bridge.GetRuntimeInfoAsync().GetAwaiter().GetResult();
        Console.WriteLine($"python {info.PythonVersion} ({info.Executable}), torch {info.TorchVersion}, {info.TorchThreads} threads, {Environment.ProcessorCount} cores");

        // 1. Call round-trip while already on the Python thread (what bridge methods cost once queued work runs).
        var perCallUs = runtime.InvokeAsync(() =>
        {
            const int batch = 2000;
            for (int i = 0; i < 10_000; i++) bridge.Echo(i);
            var samples = new double[31];
            for (int s = 0; s < samples.Length; s++)
            {
                long t = Stopwatch.GetTimestamp();
                for (int i = 0; i < batch; i++) bridge.Echo(i);
                samples[s] = Stopwatch.GetElapsedTime(t).TotalMicroseconds / batch;
            }
            return Median(samples);
        }).GetAwaiter().GetResult();

        // 2. Full InvokeAsync round-trip from another thread (queue hop + GIL re-entry + call + completion).
        for (int i = 0; i < 500; i++) runtime.InvokeAsync(() => bridge.Echo(1)).GetAwaiter().GetResult();
        var hops = new double[2001];
        for (int i = 0; i < hops.Length; i++)
        {
            long t = Stopwatch.GetTimestamp();
            runtime.InvokeAsync(() => bridge.Echo(1)).GetAwaiter().GetResult();
            hops[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }

        // 3. 64 MiB in and out of a float32 tensor; buffers are reused and pre-touched (fresh 64 MiB costs page faults).
        var source = new float[Bytes / 4];
        for (int i = 0; i < source.Length; i++) source[i] = i * 0.25f;
        var destination = new float[Bytes / 4];
        Array.Fill(destination, -1f);
        var tensor = bridge.CreateTensorAsync([source.Length]).GetAwaiter().GetResult();
        var (write, read) = runtime.InvokeAsync(() =>
        {
            bridge.WriteTensor<float>(tensor, source);
            bridge.ReadTensor<float>(tensor, destination);
            var w = new double[repeats];
            var r = new double[repeats];
            for (int s = 0; s < repeats; s++)
            {
                long t = Stopwatch.GetTimestamp();
                bridge.WriteTensor<float>(tensor, source);
                w[s] = Stopwatch.GetElapsedTime(t).TotalSeconds;
                t = Stopwatch.GetTimestamp();
                bridge.ReadTensor<float>(tensor, destination);
                r[s] = Stopwatch.GetElapsedTime(t).TotalSeconds;
            }
            return (Median(w), Median(r));
        }).GetAwaiter().GetResult();
        if (!source.AsSpan().SequenceEqual(destination)) { Console.Error.WriteLine("python-bridge: data read back differs from data written"); return 1; }
        var sum = bridge.SumTensorAsync(tensor).GetAwaiter().GetResult();
        bridge.ReleaseTensorAsync(tensor).GetAwaiter().GetResult();

        // Async variants include the queue hop; measured outside the Python thread as a caller would.
        var writeAsync = new double[repeats];
        var tensor2 = bridge.CreateTensorAsync([source.Length]).GetAwaiter().GetResult();
        bridge.WriteTensorAsync<float>(tensor2, source).GetAwaiter().GetResult();
        for (int s = 0; s < repeats; s++)
        {
            long t = Stopwatch.GetTimestamp();
            bridge.WriteTensorAsync<float>(tensor2, source).GetAwaiter().GetResult();
            writeAsync[s] = Stopwatch.GetElapsedTime(t).TotalSeconds;
        }
        bridge.ReleaseTensorAsync(tensor2).GetAwaiter().GetResult();

        // Baseline: plain C# memcpy of 64 MiB between two pre-touched buffers.
        var a = new byte[Bytes];
        var b = new byte[Bytes];
        Array.Fill(a, (byte)1);
        Array.Fill(b, (byte)2);
        var copies = new double[repeats];
        a.AsSpan().CopyTo(b);
        for (int s = 0; s < repeats; s++)
        {
            long t = Stopwatch.GetTimestamp();
            a.AsSpan().CopyTo(b);
            copies[s] = Stopwatch.GetElapsedTime(t).TotalSeconds;
        }
        double memcpy = Median(copies);

        static double GBps(double seconds) => Bytes / seconds / 1e9;
        var ic = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(ic, $"call round-trip on the Python thread (bridge.echo(int)): {perCallUs:0.00} µs median"));
        Console.WriteLine(string.Create(ic, $"InvokeAsync round-trip from another thread:             {Median(hops):0.0} µs median"));
        Console.WriteLine(string.Create(ic, $"C# memcpy 64 MiB (baseline):            {memcpy * 1e3,7:0.00} ms  {GBps(memcpy),6:0.00} GB/s"));
        Console.WriteLine(string.Create(ic, $"64 MiB C# -> torch tensor:              {write * 1e3,7:0.00} ms  {GBps(write),6:0.00} GB/s  ratio vs memcpy {memcpy / write:0.00}"));
        Console.WriteLine(string.Create(ic, $"64 MiB torch tensor -> C#:              {read * 1e3,7:0.00} ms  {GBps(read),6:0.00} GB/s  ratio vs memcpy {memcpy / read:0.00}"));
        Console.WriteLine(string.Create(ic, $"64 MiB C# -> tensor via WriteTensorAsync: {Median(writeAsync) * 1e3,5:0.00} ms  {GBps(Median(writeAsync)),6:0.00} GB/s  ratio vs memcpy {memcpy / Median(writeAsync):0.00}"));
        Console.WriteLine(string.Create(ic, $"(check: tensor sum {sum:0})"));
        return 0;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
