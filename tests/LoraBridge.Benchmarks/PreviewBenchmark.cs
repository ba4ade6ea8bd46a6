using System.Diagnostics;
using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Python;
using LoraBridge.Tui;
using RgbImage = LoraBridge.Tui.RgbImage;

namespace LoraBridge.Benchmarks;

/// <summary>
/// `preview`: what the TUI's live per-step preview (A1111's "Approx cheap" or "TAESD" on the running latent, one bridge
/// call per step) costs against a sampling step, on the built-in demo model: `dotnet run -c Release --project
/// tests/LoraBridge.Benchmarks -- preview [--python PATH] [--steps N] [--repeats N] [--sizes 128,256]`.
/// Two figures per size, both measured in the same run:
/// (1) the preview call alone — timed back to back while a job's sampler is live (the step queue drained first) —
///     against the baseline: one step of the same job without previews (time between the first and the last step's
///     progress report / steps, median of repeats);
/// (2) whole jobs with and without live previews (as the TUI wires them: <see cref="LivePreviews"/>), alternating:
///     CPU time of the Python thread per step (steps and previews both run there) and wall time per step, and their
///     ratios. On a busy shared machine (2) is dominated by noise; (1) is the figure to read.
/// (3) the TAESD preview call ("TAESD" live preview method; a seeded random decoder file in the data folder's
///     models/VAE-approx: the cost does not depend on the weights) against the same step baseline.
/// Figures (1) and (2) use "Approx cheap" explicitly.
/// </summary>
internal static class PreviewBenchmark
{
    /// <summary>Counts previews and times the sampling loop: from the first step's report to the last one's.</summary>
    private sealed class CountingSink : IPreviewSink, IProgress<GenerationProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private double _first = double.NaN, _last;
        private int _reports;
        public int Previews;
        public void Preview(RgbImage image, int step, int totalSteps, bool taesd) => Interlocked.Increment(ref Previews);
        public void Report(GenerationProgress value)
        {
            var now = _clock.Elapsed.TotalMilliseconds;
            if (double.IsNaN(_first)) _first = now;
            _last = now;
            _reports++;
        }
        /// <summary>Milliseconds per step between the first and the last report (job set-up and decoding excluded).</summary>
        public double StepMilliseconds => _reports > 1 ? (_last - _first) / (_reports - 1) : double.NaN;
    }

    /// <summary>Times <c>calls</c> preview calls of <c>request</c> once, after the step that reports <c>atStep</c>.</summary>
    private sealed class CallTimer(PythonBridge bridge, LivePreviewRequest request, int atStep, int calls) : IProgress<GenerationProgress>
    {
        public double[] Milliseconds { get; } = new double[calls];
        public int Pixels;
        public bool UsedTaesd;
        public void Report(GenerationProgress value)
        {
            if (value.Step != atStep) return;
            // The first call waits for the step queued behind this report (and loads a TAESD file once); the timed
            // ones then run alone.
            var first = bridge.LatentPreviewAsync(request.Method, request.ModelsDirs).GetAwaiter().GetResult()
                ?? throw new InvalidOperationException("no live sampler during the job");
            if (first.Note is { } note) throw new InvalidOperationException(note);
            Pixels = first.Image.Width * first.Image.Height;
            UsedTaesd = first.UsedTaesd;
            for (int i = 0; i < Milliseconds.Length; i++)
            {
                var clock = Stopwatch.StartNew();
                _ = bridge.LatentPreviewAsync(request.Method, request.ModelsDirs).GetAwaiter().GetResult();
                Milliseconds[i] = clock.Elapsed.TotalMilliseconds;
            }
        }
    }

    /// <summary>A TAESD decoder file of seeded random weights (the decoder's layout, written by lorabridge.checkpoint).</summary>
    private static Task<int> WriteRandomTaesdAsync(PythonRuntime runtime, string path) => runtime.InvokeAsync(() =>
    {
        using var torch = global::Python.Runtime.Py.Import("torch");
        using var taesd = global::Python.Runtime.Py.Import("lorabridge.taesd");
        using var checkpoint = global::Python.Runtime.Py.Import("lorabridge.checkpoint");
        using var seed = new global::Python.Runtime.PyInt(0);
        using var _ = torch.InvokeMethod("manual_seed", seed);
        using var decoder = taesd.InvokeMethod("TaesdDecoder");
        using var weights = decoder.InvokeMethod("state_dict");
        using var file = new global::Python.Runtime.PyString(path);
        using var __ = checkpoint.InvokeMethod("save_safetensors", file, weights);
        return 0;
    });

    public static int Run(string[] args)
    {
        string? python = null;
        int steps = 20, repeats = 3;
        int[] sizes = [128, 256];
        for (int i = 0; i < args.Length; i++)
        {
            string option = args[i];
            if (i + 1 >= args.Length || option is not ("--python" or "--steps" or "--repeats" or "--sizes"))
            {
                Console.Error.WriteLine($"preview: bad argument '{option}' (expected --python PATH, --steps N, --repeats N, --sizes 128,256)");
                return 2;
            }
            string value = args[++i];
            try
            {
                switch (option)
                {
                    case "--python": python = value; break;
                    case "--steps": steps = int.Parse(value, CultureInfo.InvariantCulture); break;
                    case "--repeats": repeats = int.Parse(value, CultureInfo.InvariantCulture); break;
                    default: sizes = value.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                }
            }
            catch (FormatException)
            {
                Console.Error.WriteLine($"preview: {option} '{value}' is not a number");
                return 2;
            }
        }
        var temp = Directory.CreateTempSubdirectory("lorabridge-preview-bench-").FullName;
        try
        {
            return RunAsync(python, steps, repeats, sizes, temp).GetAwaiter().GetResult();
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    private static async Task<int> RunAsync(string? python, int steps, int repeats, int[] sizes, string temp)
    {
        using var runtime = await PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = python }).ConfigureAwait(false);
        var bridge = new PythonBridge(runtime);
        var info = await bridge.GetRuntimeInfoAsync().ConfigureAwait(false);
        Console.WriteLine($"python {info.PythonVersion}, torch {info.TorchVersion} on {info.Device}, {info.TorchThreads} torch threads, {Environment.ProcessorCount} cores");
        var settings = new WorkspaceSettings { DataDir = Path.Combine(temp, "data") };
        var workspace = new GenerationWorkspace(settings, bridge);
        await workspace.PrepareAsync(CancellationToken.None).ConfigureAwait(false);
        var modelsDirs = UpscalerLocations.ModelsDirs(settings);
        var vaeApprox = Directory.CreateDirectory(Path.Combine(modelsDirs[^1], "VAE-approx")).FullName;
        await WriteRandomTaesdAsync(runtime, Path.Combine(vaeApprox, "taesd_decoder.safetensors")).ConfigureAwait(false);
        var cheap = new LivePreviewRequest(PreviewMethod.ApproxCheap, modelsDirs);
        var bridgeSource = LivePreviews.FromBridge(bridge);
        Func<CancellationToken, Task<LiveFrame?>> source = ct => bridgeSource(cheap, ct);
        Console.WriteLine($"demo model, Euler a, {steps} steps, batch 1, {repeats} repetitions per path (alternating, after a warm-up)");
        foreach (int size in sizes)
        {
            var request = new GenerationRequest
            {
                Prompt = "a lighthouse on a cliff, <lora:demo_style:0.8>", NegativePrompt = "blurry", Steps = steps, Sampler = "Euler a",
                CfgScale = 7, Seed = 1234, Width = size, Height = size, OutputDir = Path.Combine(temp, "out"),
            };
            // Per step: wall milliseconds and CPU milliseconds of the Python thread (where both steps and previews
            // run; on a shared machine its CPU time is far steadier than the wall clock).
            async Task<(double Wall, double Cpu)> Job(bool previews)
            {
                var sink = new CountingSink();
                var live = previews ? new LivePreviews(sink, sink, source, CancellationToken.None) : null;
                var cpu0 = await ThreadCpuAsync(runtime).ConfigureAwait(false);
                await workspace.GenerateAsync(request, live ?? (IProgress<GenerationProgress>)sink, CancellationToken.None).ConfigureAwait(false);
                var wall = sink.StepMilliseconds;
                var cpu = (await ThreadCpuAsync(runtime).ConfigureAwait(false) - cpu0) / steps;
                if (previews && (live!.Failure is not null || live.Requested == 0))
                    throw new InvalidOperationException("live previews did not run: " + live.Failure?.Message);
                return (wall, cpu);
            }
            await Job(false).ConfigureAwait(false);
            await Job(true).ConfigureAwait(false);
            var plain = new List<(double Wall, double Cpu)>();
            var withPreviews = new List<(double Wall, double Cpu)>();
            for (int r = 0; r < repeats; r++)
            {
                if (r % 2 == 0) { plain.Add(await Job(false).ConfigureAwait(false)); withPreviews.Add(await Job(true).ConfigureAwait(false)); }
                else { withPreviews.Add(await Job(true).ConfigureAwait(false)); plain.Add(await Job(false).ConfigureAwait(false)); }
            }
            var timer = new CallTimer(bridge, cheap, atStep: Math.Max(1, steps / 2), calls: 50);
            await workspace.GenerateAsync(request, timer, CancellationToken.None).ConfigureAwait(false);
            // TAESD decodes at the image's size: far more work per call, so fewer calls.
            var taesdTimer = new CallTimer(bridge, cheap with { Method = PreviewMethod.Taesd }, atStep: Math.Max(1, steps / 2), calls: 5);
            await workspace.GenerateAsync(request, taesdTimer, CancellationToken.None).ConfigureAwait(false);
            if (!taesdTimer.UsedTaesd) throw new InvalidOperationException("the TAESD preview was not made by TAESD");
            double step = Median(plain.Select(p => p.Wall).ToList()), call = Median([.. timer.Milliseconds]);
            double stepCpu = Median(plain.Select(p => p.Cpu).ToList()), liveCpu = Median(withPreviews.Select(p => p.Cpu).ToList());
            double liveWall = Median(withPreviews.Select(p => p.Wall).ToList());
            int latent = (int)Math.Sqrt(timer.Pixels);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{size}x{size} (preview {latent}x{latent} px): step {step:0.00} ms wall (baseline); preview call {call:0.000} ms = {100 * call / step:0.00}% of a step"));
            double taesdCall = Median([.. taesdTimer.Milliseconds]);
            int full = (int)Math.Sqrt(taesdTimer.Pixels);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  TAESD preview ({full}x{full} px): call {taesdCall:0.00} ms = {100 * taesdCall / step:0.00}% of a step ({taesdCall / call:0.0}x the cheap call)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  whole jobs (Approx cheap), Python-thread CPU per step: without previews {stepCpu:0.00} ms, with {liveCpu:0.00} ms = {100 * (liveCpu / stepCpu - 1):+0.00;-0.00}%; " +
                $"wall {step:0.00} vs {liveWall:0.00} ms ({100 * (liveWall / step - 1):+0.0;-0.0}%, machine noise included)"));
        }
        return 0;
    }

    private static Task<double> ThreadCpuAsync(PythonRuntime runtime) => runtime.InvokeAsync(() =>
    {
        using var time = global::Python.Runtime.Py.Import("time");
        using var t = time.InvokeMethod("thread_time");
        return t.As<double>() * 1000;
    });

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
