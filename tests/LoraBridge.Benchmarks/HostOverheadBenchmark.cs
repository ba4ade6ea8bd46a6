using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using Python.Runtime;

namespace LoraBridge.Benchmarks;

/// <summary>
/// `host-overhead`: what the C# host adds per sampling step. On the built-in demo model, in one process with one
/// embedded interpreter, the same request (Euler a, a keyframed and a static LoRA) runs through
/// <see cref="GenerationEngine"/> — per step: network changes, one guided step through the bridge, progress — and,
/// as the baseline, the same recorded sequence of Session calls driven by a plain Python loop
/// (python/benchmarks/host_loop.py) with one bridge call for the whole loop. Between them, the recorded calls are
/// replayed from C# straight over the bridge (each awaited; the next step queued ahead; networks and step in one
/// call, queued ahead) to show where the cost is and what a change would save; a second Python run is the A/A
/// control. Only the sampling loop is timed; the order of the paths rotates per repetition; every path must give
/// PNG bytes identical to the engine's (same work). Session.step/set_networks are timed inside Python, so the host
/// part of each loop (wall − time in Session) is reported apart from the model time, which is what the noise of a
/// shared machine mostly hits.
/// Options: --python PATH, --threads N (torch threads; default 1: the host's cost does not depend on it and the
/// model time stays stable on a shared machine), --repeats N (default 15), --steps N (default 20),
/// --sizes 64,128 (square sizes in pixels), --prompt TEXT.
/// </summary>
internal static class HostOverheadBenchmark
{
    // A keyframed LoRA whose UNet multiplier ramps over the whole run (a network change before every step: the most
    // bridge calls a step can need) and a static one that also reaches the text encoder.
    private const string DefaultPrompt = "a castle on a hill at sunset, <lora:demo_style:0@0,1@1.0> <lora:demo_subject:0.8>";
    private const string Negative = "blurry, low quality";
    private const long Seed = 1234;

    public static int Run(string[] args)
    {
        string? python = null;
        int threads = 1;
        int repeats = 15, steps = 20;
        int[] sizes = [64, 128];
        string prompt = DefaultPrompt;
        const string Usage = "expected --python PATH, --threads N, --repeats N, --steps N, --sizes 64,128, --prompt TEXT";
        for (int i = 0; i < args.Length; i++)
        {
            string option = args[i];
            if (option is not ("--python" or "--threads" or "--repeats" or "--steps" or "--sizes" or "--prompt"))
            {
                Console.Error.WriteLine($"host-overhead: unknown argument '{option}' ({Usage})");
                return 2;
            }
            if (i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"host-overhead: {option} needs a value ({Usage})");
                return 2;
            }
            string value = args[++i];
            static bool Int(string text, out int n) => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out n);
            bool ok = true;
            switch (option)
            {
                case "--python": python = value; break;
                case "--threads": ok = Int(value, out threads) && threads >= 1; break;
                case "--repeats": ok = Int(value, out repeats) && repeats >= 1; break;
                case "--steps": ok = Int(value, out steps) && steps >= 1; break;
                case "--prompt": prompt = value; break;
                default:
                    var parts = value.Split(',');
                    sizes = new int[parts.Length];
                    for (int k = 0; k < parts.Length && ok; k++) ok = Int(parts[k], out sizes[k]) && sizes[k] > 0 && sizes[k] % 8 == 0;
                    break;
            }
            if (!ok)
            {
                Console.Error.WriteLine($"host-overhead: {option} '{value}' is not valid (threads, repeats and steps are integers from 1; sizes are positive multiples of 8, comma-separated)");
                return 2;
            }
        }
        var temp = Directory.CreateTempSubdirectory("lorabridge-host-overhead-").FullName;
        try
        {
            return RunAsync(python, threads, repeats, steps, sizes, prompt, temp).GetAwaiter().GetResult();
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    private enum PathKind { Engine, BridgeAwaited, BridgeAhead, OneCallAhead, Python, PythonAgain, EngineAfterStep, EngineAfterCfg }

    private static readonly string[] PathNames =
    [
        "C# GenerationEngine (as shipped)",
        "C# loop over the bridge, each call awaited",
        "C# loop over the bridge, one step queued ahead",
        "C# loop, networks+step in one call, queued ahead",
        "Python loop, one bridge call (baseline)",
        "Python loop again (A/A control: the noise floor)",
        "C# GenerationEngine, do-nothing after-step hook (one step at a time)",
        "C# GenerationEngine, do-nothing after-CFG hook (callback in every step)",
    ];

    /// <summary>Per-step milliseconds of each repetition, per path: wall, process CPU, Python-thread CPU, time in Session, time in Python GC.</summary>
    private sealed record SizeResult(int Size, int Calls, double SetsPerStep, double[][] Wall, double[][] Cpu, double[][] PyThreadCpu, double[][] Inside, double[][] Gc);

    /// <summary>
    /// One timed sampling loop: wall seconds, process CPU seconds, CPU seconds of the Python thread, wall seconds
    /// inside Session.step/set_networks (the model work; the rest of the loop is host), the PNGs made.
    /// </summary>
    private sealed record Measurement(double Wall, double Cpu, double PyThreadCpu, double Inside, double Gc, IReadOnlyList<byte[]> Pngs);

    /// <summary>Python-side clocks read on the Python thread: its CPU time and the wall time spent inside Session calls.</summary>
    private readonly record struct PyCounters(double ThreadCpu, double Inside, double Gc)
    {
        public static PyCounters operator -(PyCounters a, PyCounters b) => new(a.ThreadCpu - b.ThreadCpu, a.Inside - b.Inside, a.Gc - b.Gc);
    }

    private static async Task<int> RunAsync(string? python, int threads, int repeats, int steps, int[] sizes, string prompt, string temp)
    {
        using var runtime = await PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = python, TorchThreads = threads }).ConfigureAwait(false);
        var bridge = new PythonBridge(runtime);
        var info = await bridge.GetRuntimeInfoAsync().ConfigureAwait(false);
        Console.WriteLine($"python {info.PythonVersion} ({info.Executable}), torch {info.TorchVersion} on {info.Device}, {info.TorchThreads} torch threads, {Environment.ProcessorCount} cores");

        var hostLoop = Path.Combine(runtime.PackageDir, "benchmarks", "host_loop.py");
        if (!File.Exists(hostLoop))
        {
            Console.Error.WriteLine($"host-overhead: the Python baseline {hostLoop} does not exist");
            return 1;
        }
        PyObject? module = null;
        runtime.AddShutdownAction(() => module?.Dispose());
        await runtime.InvokeAsync(() =>
        {
            using var sys = Py.Import("sys");
            using var path = sys.GetAttr("path");
            using var index = new PyInt(0);
            using var dir = new PyString(Path.GetDirectoryName(hostLoop)!);
            path.InvokeMethod("insert", index, dir).Dispose();
            module = Py.Import("host_loop");
        }).ConfigureAwait(false);

        // The demo model, its tokenizer and LoRAs, written as `lorabridge generate` does on first use.
        var workspace = new GenerationWorkspace(new WorkspaceSettings { DataDir = Path.Combine(temp, "data") }, bridge);
        var checkpoint = await workspace.PrepareAsync(CancellationToken.None).ConfigureAwait(false);
        var catalog = workspace.Catalog;
        NetworkFile Resolve(string name)
        {
            var entry = catalog.Find(name);
            return new NetworkFile(name, entry.FilePath, name, catalog.ShortHashOf(entry));
        }
        var backend = new TimedBackend(new PythonGenerationBackend(bridge), () => CountersAsync(runtime, module!));
        var engine = new GenerationEngine(backend, new A1111PromptPlanner(), Resolve);
        // The backend is also the progress sink: the loop's time ends at the last step's progress report.
        var progress = backend;
        var postLoop = new List<double>();
        Console.WriteLine($"prompt: {prompt}");
        Console.WriteLine($"negative: {Negative}; Euler a, {steps} steps, CFG 7, seed {Seed}; {repeats} repetitions per path, order rotated, after one warm-up each");

        var results = new List<SizeResult>();
        foreach (int size in sizes)
        {
            var request = new GenerationRequest
            {
                Prompt = prompt, NegativePrompt = Negative, Steps = steps, Sampler = "Euler a", CfgScale = 7, Seed = Seed,
                Width = size, Height = size, OutputDir = Path.Combine(temp, "out", size.ToString(CultureInfo.InvariantCulture)),
            };

            // Warm-up of the engine; the second run (conditionings cached, as in every timed run) records the exact
            // Session calls its loop makes, which the other paths replay.
            await engine.GenerateAsync(request, checkpoint, progress).ConfigureAwait(false);
            await runtime.InvokeAsync(() => module!.InvokeMethod("instrument").Dispose()).ConfigureAwait(false);
            var rec = await RecordAsync(engine, backend, request, checkpoint, progress).ConfigureAwait(false);
            var reference = backend.LastPngs!;
            await runtime.InvokeAsync(() => SetCommands(module!, rec.Commands)).ConfigureAwait(false);
            var replay = new BridgeReplay(bridge, module!, rec, () => CountersAsync(runtime, module!));

            async Task<Measurement> RunPath(PathKind path)
            {
                switch (path)
                {
                    case PathKind.Engine:
                        await engine.GenerateAsync(request, checkpoint, progress).ConfigureAwait(false);
                        postLoop.Add(backend.PostLoopSeconds);
                        return new Measurement(backend.LoopSeconds, backend.LoopCpuSeconds, backend.LoopCounters.ThreadCpu, backend.LoopCounters.Inside, backend.LoopCounters.Gc, backend.LastPngs!);
                    case PathKind.EngineAfterStep or PathKind.EngineAfterCfg:
                        // What an extension subscribing to a sampling hook costs: the engine's serial path, and for
                        // after-CFG the callback from inside each step into C# and back.
                        engine.Hooks = new NoOpSamplingHooks(afterCfg: path == PathKind.EngineAfterCfg);
                        try
                        {
                            await engine.GenerateAsync(request, checkpoint, progress).ConfigureAwait(false);
                        }
                        finally
                        {
                            engine.Hooks = null;
                        }
                        return new Measurement(backend.LoopSeconds, backend.LoopCpuSeconds, backend.LoopCounters.ThreadCpu, backend.LoopCounters.Inside, backend.LoopCounters.Gc, backend.LastPngs!);
                    case PathKind.BridgeAwaited: return await replay.RunAsync(ReplayMode.Awaited).ConfigureAwait(false);
                    case PathKind.BridgeAhead: return await replay.RunAsync(ReplayMode.Ahead).ConfigureAwait(false);
                    case PathKind.OneCallAhead: return await replay.RunAsync(ReplayMode.OneCallAhead).ConfigureAwait(false);
                    default: return await RunPythonAsync(runtime, module!, rec).ConfigureAwait(false);
                }
            }

            int paths = PathNames.Length;
            foreach (var path in Enum.GetValues<PathKind>())
            {
                var warm = await RunPath(path).ConfigureAwait(false);
                if (!SamePngs(reference, warm.Pngs))
                {
                    Console.Error.WriteLine($"host-overhead: {size}x{size}: '{PathNames[(int)path]}' gave other PNG bytes than the engine; the paths did not do the same work");
                    return 1;
                }
            }
            var wall = new double[paths][];
            var cpu = new double[paths][];
            var pyThread = new double[paths][];
            var inside = new double[paths][];
            var gcs = new double[paths][];
            for (int k = 0; k < paths; k++) { wall[k] = new double[repeats]; cpu[k] = new double[repeats]; pyThread[k] = new double[repeats]; inside[k] = new double[repeats]; gcs[k] = new double[repeats]; }
            for (int r = 0; r < repeats; r++)
            {
                // Rotate which path goes first, so slow drift of the shared machine hits all alike.
                for (int j = 0; j < paths; j++)
                {
                    int k = (r + j) % paths;
                    var run = await RunPath((PathKind)k).ConfigureAwait(false);
                    if (!SamePngs(reference, run.Pngs))
                    {
                        Console.Error.WriteLine($"host-overhead: {size}x{size}: '{PathNames[k]}' gave other PNG bytes than the engine's first run");
                        return 1;
                    }
                    wall[k][r] = run.Wall * 1e3 / rec.Commands.Count;
                    cpu[k][r] = run.Cpu * 1e3 / rec.Commands.Count;
                    pyThread[k][r] = run.PyThreadCpu * 1e3 / rec.Commands.Count;
                    inside[k][r] = run.Inside * 1e3 / rec.Commands.Count;
                    gcs[k][r] = run.Gc * 1e3 / rec.Commands.Count;
                }
            }
            var after = await RecordAsync(engine, backend, request, checkpoint, progress).ConfigureAwait(false);
            if (!after.Commands.SequenceEqual(rec.Commands, StepCommandComparer.Instance))
            {
                Console.Error.WriteLine($"host-overhead: {size}x{size}: the engine's step calls changed between runs; the replay would not be the same work");
                return 1;
            }
            double sets = rec.Commands.Count(c => c.Settings is not null) / (double)rec.Commands.Count;
            results.Add(new SizeResult(size, rec.Commands.Count, sets, wall, cpu, pyThread, inside, gcs));
            for (int k = 0; k < paths; k++)
                Console.WriteLine($"{size}x{size} {PathNames[k]}: {string.Join(" ", wall[k].Select(v => v.ToString("0.00", CultureInfo.InvariantCulture)))} ms/step");
        }

        double engineUs = MeasureEngineOnly(prompt, steps, checkpoint);
        var (callUs, idleCallUs, pyCallUs) = await MeasureBridgeCallAsync(runtime, bridge).ConfigureAwait(false);

        var ic = CultureInfo.InvariantCulture;
        int py = (int)PathKind.Python;
        Console.WriteLine();
        Console.WriteLine($"per sampling step; overhead = path / Python loop - 1; wall: median and best of {repeats}, median of the per-repetition ratios; CPU: median CPU time of the process and of the Python thread alone;");
        Console.WriteLine("in Session: median wall time inside Session.step/set_networks (model work); host: median of (loop wall - in Session), µs/step");
        Console.WriteLine("py GC µs: mean time in Python's cyclic garbage collector per step");
        Console.WriteLine("host over.: (host µs of the path - host µs of the Python loop) / Python loop wall: the overhead with the model-time noise taken out");
        Console.WriteLine("size      calls nets/step  path                                              wall ms   over.  best ms   over.  paired   CPU ms   over.  Py-thr CPU  over.  in Session  over.   host µs  host over.  py GC µs");
        foreach (var r in results)
        {
            double pyWall = Median(r.Wall[py]), pyBest = r.Wall[py].Min(), pyCpu = Median(r.Cpu[py]), pyThread = Median(r.PyThreadCpu[py]), pyIn = Median(r.Inside[py]);
            double pyHost = Median(r.Wall[py].Zip(r.Inside[py], (a, i) => (a - i) * 1e3).ToArray());
            for (int k = 0; k < PathNames.Length; k++)
            {
                double w = Median(r.Wall[k]), b = r.Wall[k].Min(), c = Median(r.Cpu[k]), t = Median(r.PyThreadCpu[k]), ins = Median(r.Inside[k]);
                double host = Median(r.Wall[k].Zip(r.Inside[k], (a, i) => (a - i) * 1e3).ToArray());
                double paired = Median(r.Wall[k].Zip(r.Wall[py], (a, p) => a / p - 1).ToArray());
                string Pct(double v) => k == py ? "" : (Math.Round(v * 100, 1) + 0.0).ToString("+0.0;-0.0;0.0", ic) + "%";
                Console.WriteLine(string.Create(ic,
                    $"{r.Size + "x" + r.Size,-9} {r.Calls,5} {r.SetsPerStep,9:0.00}  {PathNames[k],-48}  {w,7:0.000} {Pct(w / pyWall - 1),7}  {b,7:0.000} {Pct(b / pyBest - 1),7}  {Pct(paired),6}  {c,7:0.000} {Pct(c / pyCpu - 1),7}  {t,10:0.000} {Pct(t / pyThread - 1),6}  {ins,10:0.000} {Pct(ins / pyIn - 1),6}  {host,8:0.0}  {Pct((host - pyHost) / 1e3 / pyWall),10}  {r.Gc[k].Average() * 1e3,8:0.0}"));
            }
        }
        Console.WriteLine("target: the engine's overhead at most 2%");
        Console.WriteLine(string.Create(ic, $"not per step, so not in the table: the engine's work between the last step and decoding (infotext) {Median([.. postLoop]) * 1e6:0} µs per image"));
        Console.WriteLine(string.Create(ic, $"for scale: engine bookkeeping {engineUs:0.0} µs/step (same plan, backend that does nothing); " +
            $"bridge call round trip (gen_release of an unknown handle, awaited from the thread pool; {pyCallUs:0.00} µs of it is the Python function): " +
            $"{callUs:0.0} µs back to back, {idleCallUs:0.0} µs after 5 ms idle (wakes the sleeping threads, as between sampler steps)"));
        Console.WriteLine("PNG bytes: identical on every path, size and repetition");
        return 0;
    }

    private enum ReplayMode
    {
        /// <summary>Every bridge call awaited before the next, as the engine does.</summary>
        Awaited,
        /// <summary>The next step's calls queued before awaiting the current step.</summary>
        Ahead,
        /// <summary>As <see cref="Ahead"/>, with the network change and the step in one call (host_loop.step_with_networks).</summary>
        OneCallAhead,
    }

    /// <summary>
    /// The engine's recorded loop replayed straight over <see cref="PythonBridge"/>, without the engine (see
    /// <see cref="ReplayMode"/>). Queuing ahead lets the Python thread find its next work waiting instead of
    /// sleeping until C# sends it; the queue runs calls in order, so this is safe.
    /// </summary>
    private sealed class BridgeReplay(PythonBridge bridge, PyObject module, Recording rec, Func<Task<PyCounters>> counters)
    {
        private readonly List<(List<(string, double, double, int?)>? Settings, List<(long, double)> Positive, long Negative, double Cfg)> _calls =
            [.. rec.Commands.Select(c => (c.Settings?.Select(n => (n.Name, n.Te, n.Unet, n.Dyn)).ToList(), c.Positive.ToList(), c.Negative, c.CfgScale))];

        public async Task<Measurement> RunAsync(ReplayMode mode)
        {
            var s = rec.Start!;
            var run = await bridge.StartSamplingAsync(s.Sampler, s.Schedule, s.Steps, s.Seed, s.BatchSize, s.Width, s.Height,
                s.RandnSource, s.EtaNoiseSeedDelta).ConfigureAwait(false);
            try
            {
                var progress = new LastProgress();
                var counters0 = await counters().ConfigureAwait(false);
                double cpu0 = ProcessCpu.Seconds();
                long t0 = Stopwatch.GetTimestamp();
                Task? pending = null;
                for (int i = 0; i < _calls.Count; i++)
                {
                    var c = _calls[i];
                    if (mode == ReplayMode.Awaited)
                    {
                        if (c.Settings is not null) await bridge.SetNetworksAsync(c.Settings).ConfigureAwait(false);
                        await bridge.StepAsync(run.Handle, c.Positive, c.Negative, c.Cfg).ConfigureAwait(false);
                        progress.Report(new GenerationProgress(0, 1, i + 1, _calls.Count, 0, TimeSpan.Zero));
                        continue;
                    }
                    Task step;
                    if (mode == ReplayMode.OneCallAhead)
                    {
                        step = OneCall(run.Handle, c.Settings, c.Positive, c.Negative, c.Cfg);
                    }
                    else
                    {
                        var set = c.Settings is null ? null : bridge.SetNetworksAsync(c.Settings);
                        step = bridge.StepAsync(run.Handle, c.Positive, c.Negative, c.Cfg);
                        if (set is not null) step = Task.WhenAll(set, step);
                    }
                    if (pending is not null)
                    {
                        await pending.ConfigureAwait(false);
                        progress.Report(new GenerationProgress(0, 1, i, _calls.Count, 0, TimeSpan.Zero));
                    }
                    pending = step;
                }
                if (pending is not null)
                {
                    await pending.ConfigureAwait(false);
                    progress.Report(new GenerationProgress(0, 1, _calls.Count, _calls.Count, 0, TimeSpan.Zero));
                }
                double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds, cpu = ProcessCpu.Seconds() - cpu0;
                var used = await counters().ConfigureAwait(false) - counters0;
                var pngs = await bridge.DecodePngAsync(run.Handle, rec.Infotexts).ConfigureAwait(false);
                return new Measurement(wall, cpu, used.ThreadCpu, used.Inside, used.Gc, pngs);
            }
            finally
            {
                await bridge.ReleaseGenerationHandleAsync(run.Handle).ConfigureAwait(false);
                await bridge.RestoreNetworksAsync().ConfigureAwait(false);
            }
        }

        /// <summary>What a combined bridge method would do: PythonBridge's marshalling of both calls, one queue hop.</summary>
        private Task<int> OneCall(long sampling, List<(string Name, double Te, double Unet, int? Dyn)>? settings, List<(long Conditioning, double Weight)> positive,
            long negative, double cfg) => bridge.Runtime.InvokeAsync(() =>
        {
            // PyObject.None is shared and must not be disposed; a list is.
            using var list = settings is null ? null : new PyList([.. settings.Select(n => (PyObject)new PyTuple([
                new PyString(n.Name), new PyFloat(n.Te), new PyFloat(n.Unet), n.Dyn is { } d ? new PyInt(d) : PyObject.None]))]);
            var nets = list ?? PyObject.None;
            using var parts = new PyList([.. positive.Select(p => (PyObject)new PyTuple([new PyInt(p.Conditioning), new PyFloat(p.Weight)]))]);
            using var handle = new PyInt(sampling);
            using var uncond = new PyInt(negative);
            using var scale = new PyFloat(cfg);
            using var r = module.InvokeMethod("step_with_networks", handle, nets, parts, uncond, scale);
            return r.As<int>();
        });
    }

    private static async Task<Measurement> RunPythonAsync(PythonRuntime runtime, PyObject module, Recording rec)
    {
        var s = rec.Start!;
        return await runtime.InvokeAsync(() =>
        {
            using var infotexts = new PyList([.. rec.Infotexts.Select(t => (PyObject)new PyString(t))]);
            using var r = module.InvokeMethod("run", new PyString(s.Sampler), new PyString(s.Schedule), new PyInt(s.Steps), new PyInt(s.Seed),
                new PyInt(s.BatchSize), new PyInt(s.Width), new PyInt(s.Height), new PyString(s.RandnSource), new PyInt(s.EtaNoiseSeedDelta), infotexts);
            using var seconds = r[0];
            using var cpu = r[1];
            using var thread = r[2];
            using var inside = r[3];
            using var gc = r[4];
            using var list = r[5];
            var pngs = new List<byte[]>();
            for (int i = 0; i < list.Length(); i++)
            {
                using var item = list[i];
                using var buffer = item.GetBuffer(PyBUF.SIMPLE);
                var bytes = new byte[buffer.Length];
                buffer.Read(bytes, 0, bytes.Length, 0);
                pngs.Add(bytes);
            }
            return new Measurement(seconds.As<double>(), cpu.As<double>(), thread.As<double>(), inside.As<double>(), gc.As<double>(), pngs);
        }).ConfigureAwait(false);
    }

    private static async Task<Recording> RecordAsync(GenerationEngine engine, TimedBackend backend, GenerationRequest request,
        CheckpointContext checkpoint, IProgress<GenerationProgress> progress)
    {
        backend.Recording = new Recording();
        try
        {
            await engine.GenerateAsync(request, checkpoint, progress).ConfigureAwait(false);
            return backend.Recording;
        }
        finally
        {
            backend.Recording = null;
        }
    }

    private static bool SetCommands(PyObject module, List<StepCommand> commands)
    {
        PyObject Settings(IReadOnlyList<NetworkSetting>? s) => s is null ? PyObject.None : new PyList([.. s.Select(n => (PyObject)new PyTuple([
            new PyString(n.Name), new PyFloat(n.Te), new PyFloat(n.Unet), n.Dyn is { } d ? new PyInt(d) : PyObject.None]))]);
        using var list = new PyList([.. commands.Select(c => (PyObject)new PyTuple([
            Settings(c.Settings),
            new PyList([.. c.Positive.Select(p => (PyObject)new PyTuple([new PyInt(p.Handle), new PyFloat(p.Weight)]))]),
            new PyInt(c.Negative), new PyFloat(c.CfgScale)]))]);
        using var n = module.InvokeMethod("set_commands", list);
        return n.As<int>() == commands.Count;
    }

    /// <summary>µs per step of the engine's own work: the same plan over a backend whose calls complete at once.</summary>
    private static double MeasureEngineOnly(string prompt, int steps, CheckpointContext checkpoint)
    {
        var backend = new TimedBackend(new NullBackend(), null);
        var engine = new GenerationEngine(backend, new A1111PromptPlanner(), name => new NetworkFile(name, name, name, null));
        var progress = backend;
        var request = new GenerationRequest { Prompt = prompt, NegativePrompt = Negative, Steps = steps, Seed = Seed, Width = 64, Height = 64, OutputDir = Path.GetTempPath() };
        for (int i = 0; i < 200; i++) engine.GenerateAsync(request, checkpoint, progress).GetAwaiter().GetResult();
        var samples = new double[101];
        for (int s = 0; s < samples.Length; s++)
        {
            double total = 0;
            for (int i = 0; i < 20; i++)
            {
                engine.GenerateAsync(request, checkpoint, progress).GetAwaiter().GetResult();
                total += backend.LoopSeconds;
            }
            samples[s] = total / 20 / steps * 1e6;
        }
        return Median(samples);
    }

    /// <summary>Round trip of a gen_* bridge call that does nothing, awaited from the thread pool like the engine's calls.</summary>
    private static async Task<(double CallUs, double IdleCallUs, double PythonUs)> MeasureBridgeCallAsync(PythonRuntime runtime, PythonBridge bridge)
    {
        const long Unknown = -1;
        for (int i = 0; i < 500; i++) await bridge.ReleaseGenerationHandleAsync(Unknown).ConfigureAwait(false);
        var samples = new double[2001];
        for (int i = 0; i < samples.Length; i++)
        {
            long t = Stopwatch.GetTimestamp();
            await bridge.ReleaseGenerationHandleAsync(Unknown).ConfigureAwait(false);
            samples[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }
        double pyUs = await runtime.InvokeAsync(() =>
        {
            using var timeit = Py.Import("timeit");
            using var stmt = new PyString("gen_release(-1)");
            using var setup = new PyString("from lorabridge.bridge import gen_release");
            using var number = new PyInt(20000);
            using var kw = new PyDict();
            kw["setup"] = setup;
            kw["number"] = number;
            using var t = timeit.GetAttr("timeit").Invoke([stmt], kw);
            return t.As<double>() / 20000 * 1e6;
        }).ConfigureAwait(false);
        // After the threads have gone idle, as between two sampler steps: the call now also wakes the sleeping
        // Python thread and a thread-pool thread for the continuation.
        var idle = new double[201];
        for (int i = 0; i < idle.Length; i++)
        {
            Thread.Sleep(5);
            long t = Stopwatch.GetTimestamp();
            await bridge.ReleaseGenerationHandleAsync(Unknown).ConfigureAwait(false);
            idle[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
        }
        return (Median(samples), Median(idle), pyUs);
    }

    /// <summary>host_loop.counters(), read on the Python thread.</summary>
    private static Task<PyCounters> CountersAsync(PythonRuntime runtime, PyObject module) => runtime.InvokeAsync(() =>
    {
        using var r = module.InvokeMethod("counters");
        using var thread = r[0];
        using var inside = r[1];
        using var gc = r[3];
        return new PyCounters(thread.As<double>(), inside.As<double>(), gc.As<double>());
    });

    private static bool SamePngs(IReadOnlyList<byte[]> a, IReadOnlyList<byte[]> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.AsSpan().SequenceEqual(p.Second));

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed record StepCommand(IReadOnlyList<NetworkSetting>? Settings, IReadOnlyList<(long Handle, double Weight)> Positive, long Negative, double CfgScale);

    private sealed class StepCommandComparer : IEqualityComparer<StepCommand>
    {
        public static readonly StepCommandComparer Instance = new();
        public bool Equals(StepCommand? a, StepCommand? b) =>
            a is not null && b is not null && a.Negative == b.Negative && a.CfgScale == b.CfgScale && a.Positive.SequenceEqual(b.Positive)
            && (a.Settings is null ? b.Settings is null : b.Settings is not null && a.Settings.SequenceEqual(b.Settings));
        public int GetHashCode(StepCommand c) => c.Negative.GetHashCode();
    }

    private sealed class Recording
    {
        public SamplingSettings? Start;
        public List<StepCommand> Commands { get; } = [];
        public IReadOnlyList<string> Infotexts = [];
        public IReadOnlyList<NetworkSetting>? PendingSettings;
    }

    /// <summary>
    /// Times the engine's sampling loop — from the sampler's start to the progress report of its last step, given
    /// as the engine's progress sink — and, while <see cref="Recording"/> is set, records the loop's calls. Adds a
    /// comparison per step and two timestamps per run. The engine's work between the last step and decoding
    /// (infotext) is per image, not per step, and is kept apart in <see cref="PostLoopSeconds"/>.
    /// </summary>
    /// <summary>Hooks that subscribe to one sampling hook and do nothing in it.</summary>
    private sealed class NoOpSamplingHooks(bool afterCfg) : IGenerationHooks, ISamplingHooks
    {
        public bool HasAfterCfg => afterCfg;
        public bool HasAfterStep => !afterCfg;
        public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct) => ValueTask.FromResult(request);
        public ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct) => ValueTask.CompletedTask;
        public ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) => ValueTask.CompletedTask;
        public ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) => ValueTask.CompletedTask;
    }

    private sealed class TimedBackend(IGenerationBackend inner, Func<Task<PyCounters>>? counters) : IGenerationBackend, IHookedGenerationBackend, IProgress<GenerationProgress>
    {
        public Task StepWithAfterCfgAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative,
            double cfgScale, Func<CfgStep, ValueTask> afterCfg, CancellationToken ct) =>
            ((IHookedGenerationBackend)inner).StepWithAfterCfgAsync(sampling, positive, negative, cfgScale, afterCfg, ct);

        public Task<IReadOnlyList<RgbImage>> DecodeRgbAsync(SamplingHandle sampling, CancellationToken ct) => ((IHookedGenerationBackend)inner).DecodeRgbAsync(sampling, ct);

        public Task<byte[]> EncodePngAsync(RgbImage image, string infotext, CancellationToken ct) => ((IHookedGenerationBackend)inner).EncodePngAsync(image, infotext, ct);

        private long _lastStepAt;
        private double _lastStepCpu;
        public double PostLoopSeconds { get; private set; }

        public void Report(GenerationProgress value)
        {
            if (value.Step != value.TotalSteps) return;
            _lastStepAt = Stopwatch.GetTimestamp();
            _lastStepCpu = ProcessCpu.Seconds();
        }

        private long _loopStart;
        private double _cpuStart;
        private bool _inLoop;
        public Recording? Recording { get; set; }
        public double LoopSeconds { get; private set; }
        public double LoopCpuSeconds { get; private set; }
        public PyCounters LoopCounters { get; private set; }
        private PyCounters _countersStart;
        public IReadOnlyList<byte[]>? LastPngs { get; private set; }

        public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct) => inner.LoadCheckpointAsync(path, ct);
        public Task LoadNetworkAsync(string name, string path, CancellationToken ct) => inner.LoadNetworkAsync(name, path, ct);
        public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct)
        {
            if (Recording is { } r && _inLoop) r.PendingSettings = [.. networks];
            return inner.SetNetworksAsync(networks, ct);
        }
        public Task RestoreAsync() => inner.RestoreAsync();
        public Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct) => inner.EncodeAsync(texts, clipSkip, ct);

        public async Task<SamplingHandle> StartAsync(SamplingSettings settings, CancellationToken ct)
        {
            var handle = await inner.StartAsync(settings, ct).ConfigureAwait(false);
            if (Recording is { } r) r.Start = settings;
            _inLoop = true;
            // Read before the clocks start: the Python thread is idle, so the read costs the loop nothing.
            if (counters is not null) _countersStart = await counters().ConfigureAwait(false);
            _cpuStart = ProcessCpu.Seconds();
            _loopStart = Stopwatch.GetTimestamp();
            return handle;
        }

        public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative, double cfgScale, CancellationToken ct)
        {
            if (Recording is { } r)
            {
                r.Commands.Add(new StepCommand(r.PendingSettings, [.. positive.Select(p => (p.Handle.Id, p.Weight))], negative.Id, cfgScale));
                r.PendingSettings = null;
            }
            return inner.StepAsync(sampling, positive, negative, cfgScale, ct);
        }

        public async Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct)
        {
            PostLoopSeconds = Stopwatch.GetElapsedTime(_lastStepAt).TotalSeconds;
            LoopSeconds = Stopwatch.GetElapsedTime(_loopStart, _lastStepAt).TotalSeconds;
            LoopCpuSeconds = _lastStepCpu - _cpuStart;
            if (counters is not null) LoopCounters = await counters().ConfigureAwait(false) - _countersStart;
            _inLoop = false;
            if (Recording is { } r) r.Infotexts = [.. infotexts];
            return LastPngs = await inner.DecodePngAsync(sampling, infotexts, ct).ConfigureAwait(false);
        }

        public Task ReleaseAsync(long handle) => inner.ReleaseAsync(handle);
    }

    /// <summary>A backend whose every call completes at once; isolates the engine's own per-step work.</summary>
    private sealed class NullBackend : IGenerationBackend
    {
        private long _next = 1;
        public Task<bool> LoadCheckpointAsync(string path, CancellationToken ct) => Task.FromResult(false);
        public Task LoadNetworkAsync(string name, string path, CancellationToken ct) => Task.CompletedTask;
        public Task SetNetworksAsync(IReadOnlyList<NetworkSetting> networks, CancellationToken ct) => Task.CompletedTask;
        public Task RestoreAsync() => Task.CompletedTask;
        public Task<IReadOnlyList<ConditioningHandle>> EncodeAsync(IReadOnlyList<IReadOnlyList<TokenChunk>> texts, int clipSkip, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<ConditioningHandle>>(texts.Select(_ => new ConditioningHandle(_next++)).ToList());
        public Task<SamplingHandle> StartAsync(SamplingSettings s, CancellationToken ct) => Task.FromResult(new SamplingHandle(_next++, s.Steps, []));
        public Task StepAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive, ConditioningHandle negative, double cfgScale, CancellationToken ct) => Task.CompletedTask;
        public Task<IReadOnlyList<byte[]>> DecodePngAsync(SamplingHandle sampling, IReadOnlyList<string> infotexts, CancellationToken ct) => Task.FromResult<IReadOnlyList<byte[]>>([]);
        public Task ReleaseAsync(long handle) => Task.CompletedTask;
    }

    /// <summary>CPU time of the whole process (all threads): the clock Python's <c>time.process_time()</c> reads on Linux.</summary>
    private static class ProcessCpu
    {
        private const int ClockProcessCputimeId = 2;

        [StructLayout(LayoutKind.Sequential)]
        private struct Timespec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        [DllImport("libc", EntryPoint = "clock_gettime")]
        private static extern int ClockGettime(int clock, out Timespec time);

        public static double Seconds()
        {
            if (OperatingSystem.IsLinux() && ClockGettime(ClockProcessCputimeId, out var t) == 0) return t.Seconds + t.Nanoseconds * 1e-9;
            using var process = Process.GetCurrentProcess();
            return process.TotalProcessorTime.TotalSeconds;
        }
    }

    /// <summary>Keeps the last report, as a progress bar would read it; runs inline (no synchronization context).</summary>
    private sealed class LastProgress : IProgress<GenerationProgress>
    {
        public GenerationProgress? Last { get; private set; }
        public void Report(GenerationProgress value) => Last = value;
    }
}
