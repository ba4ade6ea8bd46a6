using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LoraBridge.Engine;
using LoraBridge.Python;
using LoraBridge.Server;

namespace LoraBridge.Benchmarks;

/// <summary>
/// `serve-load`: a bounded load test of <c>lorabridge serve</c> on loopback. One server over the demo model on a free
/// 127.0.0.1 port; N small txt2img requests (distinct seeds, a LoRA tag, <c>save_images</c> on) from C concurrent
/// clients. Checks: every answer is 200 with one image, the output folder holds exactly one file per request (no
/// lost, no duplicated seed) and each file's bytes equal the image its response carried. Reports the client latency
/// split by the server's <c>Server-Timing</c> (queue, load, engine) and the added latency per request
/// (latency − queue − load − engine: HTTP, JSON, base64, reading the PNG back). Baseline measured in the same run:
/// the same requests straight through a <see cref="GenerationWorkspace"/>, no server (the engine's own time).
/// Exit 1 when any check fails.
/// Options: --python PATH, --threads N (torch threads, default 1), --requests N (200), --clients N (8), --steps N (4),
/// --size N (64), --baseline N (requests run directly, default 20).
/// </summary>
internal static class ServeLoadBenchmark
{
    private const string Prompt = "a lighthouse at dusk <lora:demo_style:0.7>";

    public static int Run(string[] args)
    {
        string? python = null;
        int threads = 1, requests = 200, clients = 8, steps = 4, size = 64, baseline = 20;
        const string Usage = "expected --python PATH, --threads N, --requests N, --clients N, --steps N, --size N, --baseline N";
        for (int i = 0; i < args.Length; i += 2)
        {
            string option = args[i];
            if (i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"serve-load: {option} needs a value ({Usage})");
                return 2;
            }
            string value = args[i + 1];
            if (option == "--python")
            {
                python = value;
                continue;
            }
            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < 1)
            {
                Console.Error.WriteLine($"serve-load: {option} wants a positive integer, got '{value}' ({Usage})");
                return 2;
            }
            switch (option)
            {
                case "--threads": threads = n; break;
                case "--requests": requests = n; break;
                case "--clients": clients = n; break;
                case "--steps": steps = n; break;
                case "--size": size = n; break;
                case "--baseline": baseline = n; break;
                default:
                    Console.Error.WriteLine($"serve-load: unknown argument '{option}' ({Usage})");
                    return 2;
            }
        }
        var temp = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "lorabridge-serve-load-" + Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            return RunAsync(python, threads, requests, clients, steps, size, baseline, temp).GetAwaiter().GetResult();
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    private static JsonObject Body(long seed, int steps, int size) => new()
    {
        ["prompt"] = Prompt, ["seed"] = seed, ["steps"] = steps, ["width"] = size, ["height"] = size,
        ["sampler_name"] = "Euler a", ["cfg_scale"] = 7, ["save_images"] = true,
    };

    private static async Task<int> RunAsync(string? python, int threads, int requests, int clients, int steps, int size, int baselineCount, string temp)
    {
        using var runtime = await PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = python, TorchThreads = threads }).ConfigureAwait(false);
        var bridge = new PythonBridge(runtime);
        var settings = new WorkspaceSettings { DataDir = Path.Combine(temp, "data") };
        var outDir = Path.Combine(temp, "out");
        Console.WriteLine($"serve-load: {requests} txt2img requests ({size}x{size}, {steps} steps, Euler a, one LoRA, save_images) from {clients} clients; " +
            $"{Environment.ProcessorCount} cores, {threads} torch thread(s)");

        // Baseline: the engine alone, the same kind of request, no server. The first run (model load) is not timed.
        var direct = new GenerationWorkspace(settings, bridge);
        var directMs = new List<double>();
        for (int i = -1; i < baselineCount; i++)
        {
            var clock = Stopwatch.StartNew();
            await direct.GenerateAsync(new GenerationRequest
            {
                Prompt = Prompt, Seed = 900_000 + i + 1, Steps = steps, Width = size, Height = size, Sampler = "Euler a", CfgScale = 7,
                OutputDir = Path.Combine(temp, "direct"),
            }, null, CancellationToken.None).ConfigureAwait(false);
            if (i >= 0) directMs.Add(clock.Elapsed.TotalMilliseconds);
        }

        await using var server = new A1111Server(new ServerSettings { Listen = "127.0.0.1", Port = 0, OutputDir = outDir },
            name => new GenerationWorkspace(settings with { Checkpoint = name }, bridge), bridge);
        await server.StartAsync(CancellationToken.None).ConfigureAwait(false);
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
        // Warm-up (workspace and checkpoint preparation) without saving, so the folder holds only the measured requests.
        var warm = Body(1, steps, size);
        warm["save_images"] = false;
        using (var w = await http.PostAsync("/sdapi/v1/txt2img", new StringContent(warm.ToJsonString(), Encoding.UTF8, "application/json")).ConfigureAwait(false))
            w.EnsureSuccessStatusCode();

        var results = new ConcurrentBag<(long Seed, double LatencyMs, IReadOnlyDictionary<string, double> Timing, byte[] Png)>();
        var errors = new ConcurrentQueue<string>();
        int next = -1;
        const long FirstSeed = 1000;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            for (int i = Interlocked.Increment(ref next); i < requests; i = Interlocked.Increment(ref next))
            {
                long seed = FirstSeed + i;
                var clock = Stopwatch.StartNew();
                try
                {
                    using var response = await http.PostAsync("/sdapi/v1/txt2img",
                        new StringContent(Body(seed, steps, size).ToJsonString(), Encoding.UTF8, "application/json")).ConfigureAwait(false);
                    var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                    double latency = clock.Elapsed.TotalMilliseconds;
                    if (!response.IsSuccessStatusCode)
                    {
                        errors.Enqueue($"seed {seed}: HTTP {(int)response.StatusCode}: {text}");
                        continue;
                    }
                    var images = JsonNode.Parse(text)!["images"]!.AsArray();
                    if (images.Count != 1)
                    {
                        errors.Enqueue($"seed {seed}: {images.Count} images");
                        continue;
                    }
                    var timing = ServerTiming.Parse(string.Join(", ", response.Headers.GetValues("Server-Timing")));
                    results.Add((seed, latency, timing, Convert.FromBase64String((string)images[0]!)));
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or InvalidOperationException)
                {
                    errors.Enqueue($"seed {seed}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }))).ConfigureAwait(false);
        wall.Stop();

        // Files: one per request, named NNNNN-SEED.png, each seed once, bytes equal to the response's image.
        var files = Directory.Exists(outDir) ? Directory.GetFiles(outDir, "*", SearchOption.AllDirectories) : [];
        var bySeed = files.GroupBy(f => long.Parse(Path.GetFileNameWithoutExtension(f).Split('-')[1], CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.ToList());
        var duplicated = bySeed.Where(kv => kv.Value.Count > 1).Select(kv => kv.Key).ToList();
        var lost = Enumerable.Range(0, requests).Select(i => FirstSeed + i).Where(s => !bySeed.ContainsKey(s)).ToList();
        var unexpected = bySeed.Keys.Where(s => s < FirstSeed || s >= FirstSeed + requests).ToList();
        int mismatched = results.Count(r => bySeed.TryGetValue(r.Seed, out var f) && f.Count == 1 && !File.ReadAllBytes(f[0]).AsSpan().SequenceEqual(r.Png));
        var numbers = files.Select(f => Path.GetFileName(f).Split('-')[0]).ToList();

        static double Median(IEnumerable<double> values)
        {
            var v = values.Order().ToList();
            return v.Count == 0 ? double.NaN : v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
        }
        static double Percentile(IEnumerable<double> values, double p)
        {
            var v = values.Order().ToList();
            return v.Count == 0 ? double.NaN : v[Math.Min(v.Count - 1, (int)Math.Ceiling(p * v.Count) - 1)];
        }
        var added = results.Select(r => r.LatencyMs - r.Timing.GetValueOrDefault("queue") - r.Timing.GetValueOrDefault("load") - r.Timing.GetValueOrDefault("engine")).ToList();
        double engineMedian = Median(results.Select(r => r.Timing.GetValueOrDefault("engine")));
        double directMedian = Median(directMs);
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"completed {results.Count}/{requests} in {wall.Elapsed.TotalSeconds:F1} s ({results.Count / wall.Elapsed.TotalSeconds:F2} req/s); errors {errors.Count}"));
        Console.WriteLine(string.Create(c, $"files {files.Length} (distinct numbers {numbers.Distinct().Count()}), lost {lost.Count}, duplicated {duplicated.Count}, unexpected {unexpected.Count}, bytes differing from the response {mismatched}"));
        Console.WriteLine(string.Create(c, $"client latency median {Median(results.Select(r => r.LatencyMs)):F1} ms, p95 {Percentile(results.Select(r => r.LatencyMs), 0.95):F1} ms; queue median {Median(results.Select(r => r.Timing.GetValueOrDefault("queue"))):F1} ms"));
        Console.WriteLine(string.Create(c, $"baseline (engine alone, no server, {directMs.Count} runs): median {directMedian:F1} ms; engine inside the server: median {engineMedian:F1} ms (ratio {engineMedian / directMedian:F2})"));
        Console.WriteLine(string.Create(c, $"added latency per request (latency - queue - load - engine): median {Median(added):F2} ms, p95 {Percentile(added, 0.95):F2} ms = {Median(added) / directMedian:P1} of the engine's own median time"));
        foreach (var e in errors.Take(5)) Console.WriteLine("error: " + e);
        bool ok = errors.IsEmpty && results.Count == requests && files.Length == requests && lost.Count == 0 && duplicated.Count == 0 && unexpected.Count == 0
            && mismatched == 0 && numbers.Distinct().Count() == files.Length;
        Console.WriteLine(ok ? "serve-load: OK" : "serve-load: FAILED");
        return ok ? 0 : 1;
    }
}
