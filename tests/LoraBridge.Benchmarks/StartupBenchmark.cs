using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace LoraBridge.Benchmarks;

/// <summary>
/// `startup`: what one `lorabridge generate --steps 1 --size 64x64` costs as a whole process on the built-in demo
/// model, split into phases — .NET start to <c>main</c>, discovery, embedded boot, model load, first step, decode and
/// write, shutdown (from the <c>timings:</c> line <c>--verbose</c> prints) — next to the floor measured in the same run:
/// a plain <c>python -c "import torch, numpy, PIL"</c> in the same interpreter. The two alternate, so load on a shared
/// machine hits both alike; medians are printed. A warm-up run first creates the demo model and the discovery cache
/// in a temporary data folder (the "unchanged interpreter" case); one more run with the cache deleted shows what
/// probing costs. Every run must write the same PNG bytes (same seed): their SHA-256 is printed.
/// Options: --repeats N (default 5), --python PATH (the floor's interpreter; default /usr/bin/python3),
/// --threads N (torch threads for both; default: all cores), --cli PATH (the lorabridge executable),
/// --baseline-cli PATH (an older build, run alternately with its own data folder: its phases, whole-process figure and PNG hash).
/// </summary>
internal static class StartupBenchmark
{
    private static readonly string[] Phases =
        ["start_to_main", "host_ready", "discovery", "boot", "bridge_import", "demo_check", "model_load", "encode", "first_step", "decode", "shutdown", "main_to_exit"];

    public static int Run(string[] args)
    {
        int repeats = 5;
        string python = "/usr/bin/python3";
        string? cli = null, baselineCli = null;
        int? threads = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (i + 1 >= args.Length || args[i] is not ("--repeats" or "--python" or "--cli" or "--threads" or "--baseline-cli"))
            {
                Console.Error.WriteLine($"startup: unexpected '{args[i]}' (expected --repeats N, --python PATH, --threads N, --cli PATH)");
                return 2;
            }
            var value = args[++i];
            switch (args[i - 1])
            {
                case "--repeats": repeats = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--python": python = value; break;
                case "--cli": cli = value; break;
                case "--baseline-cli": baselineCli = value; break;
                case "--threads": threads = int.Parse(value, CultureInfo.InvariantCulture); break;
            }
        }
        cli ??= FindCli();
        if (cli is null)
        {
            Console.Error.WriteLine("startup: the lorabridge executable was not found; build src/LoraBridge.Cli -c Release or pass --cli");
            return 2;
        }

        var work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-startup-{Guid.NewGuid():N}")).FullName;
        try
        {
            var data = Path.Combine(work, "data");
            string[] Generate(string outDir, string? dataDir = null) =>
            [
                "generate", "a lighthouse at dusk", "--steps", "1", "--size", "64x64", "--seed", "1", "-o", outDir, "--data-dir", dataDir ?? data, "--verbose",
                .. threads is { } t ? new[] { "--torch-threads", t.ToString(CultureInfo.InvariantCulture) } : [],
            ];
            var floorEnv = new Dictionary<string, string>();
            if (threads is { } n) floorEnv["OMP_NUM_THREADS"] = n.ToString(CultureInfo.InvariantCulture);

            Console.WriteLine($"startup: {cli}, floor: {python} -c \"import torch, numpy, PIL\", {repeats} repeats, machine load {Load()}");
            var warm = RunCli(cli, Generate(Path.Combine(work, "out-warmup")), work);
            Console.WriteLine($"warm-up (creates the demo model and the discovery cache): {warm.Wall.TotalSeconds:0.00} s");
            var baseData = Path.Combine(work, "data-baseline");
            if (baselineCli is not null)
            {
                var w = RunCli(baselineCli, Generate(Path.Combine(work, "out-baseline-warmup"), baseData), work);
                Console.WriteLine($"baseline {baselineCli} warm-up: {w.Wall.TotalSeconds:0.00} s");
            }
            var baseWalls = new List<double>();
            var baseHashes = new HashSet<string>();
            var basePhases = Phases.ToDictionary(p => p, _ => new List<double>());

            var walls = new List<double>();
            var floors = new List<double>();
            var phases = Phases.ToDictionary(p => p, _ => new List<double>());
            var hashes = new HashSet<string>();
            var caches = new List<string>();
            for (int r = 0; r < repeats; r++)
            {
                // Alternate which goes first, so a drift in the machine's load does not favour one side.
                var floorFirst = r % 2 == 0;
                if (floorFirst) floors.Add(RunFloor(python, floorEnv));
                var outDir = Path.Combine(work, $"out-{r}");
                var res = RunCli(cli, Generate(outDir), work);
                if (!floorFirst) floors.Add(RunFloor(python, floorEnv));
                if (baselineCli is not null)
                {
                    var baseOut = Path.Combine(work, $"out-baseline-{r}");
                    var b = RunCli(baselineCli, Generate(baseOut, baseData), work);
                    baseWalls.Add(b.Wall.TotalMilliseconds);
                    foreach (var p in Phases)
                        if (b.Timings.TryGetValue(p, out var v)) basePhases[p].Add(v);
                    baseHashes.Add(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(baseOut, "00000-1.png")))));
                }
                walls.Add(res.Wall.TotalMilliseconds);
                foreach (var p in Phases)
                    if (res.Timings.TryGetValue(p, out var v)) phases[p].Add(v);
                caches.Add(res.Cache);
                hashes.Add(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(outDir, "00000-1.png")))));
            }

            File.Delete(Path.Combine(data, "python-discovery.json"));
            var cold = RunCli(cli, Generate(Path.Combine(work, "out-cold")), work);

            double floor = Median(floors), wall = Median(walls);
            Console.WriteLine();
            static string Cell(List<double> v) => v.Count > 0 ? Median(v).ToString("0", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine("phase (median ms, from --verbose timings)" + (baselineCli is null ? "" : "   this build   baseline"));
            foreach (var p in Phases)
                Console.WriteLine($"  {p,-14} {Cell(phases[p]),8}" + (baselineCli is null ? "" : $"   {Cell(basePhases[p]),8}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"(cache)",-14} {string.Join(",", caches.Distinct())}"));
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generate, whole process (median)      {wall,8:0} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"floor: import torch, numpy, PIL       {floor,8:0} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generate − floor                      {wall - floor,8:0} ms  (acceptance: ≤ 1500 ms) ratio {wall / floor:0.00}×"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cold discovery (cache deleted): whole {cold.Wall.TotalMilliseconds:0} ms, discovery {cold.Timings.GetValueOrDefault("discovery"):0} ms, cache={cold.Cache}"));
            Console.WriteLine($"PNG sha256 (same seed, every run): {string.Join(", ", hashes)}{(hashes.Count == 1 ? "" : "  <-- DIFFERENT")}");
            if (baselineCli is not null)
            {
                double b = Median(baseWalls);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"baseline build, whole process (median) {b,8:0} ms  (baseline − floor {b - floor:0} ms); this build saves {b - wall:0} ms"));
                Console.WriteLine($"baseline PNG sha256: {string.Join(", ", baseHashes)}{(baseHashes.SetEquals(hashes) ? " (identical)" : " (differs)")}");
            }
            Console.WriteLine($"machine load at the end: {Load()}");
            return hashes.Count == 1 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    internal sealed record CliRun(TimeSpan Wall, Dictionary<string, double> Timings, string Cache);

    internal static CliRun RunCli(string cli, string[] args, string cwd)
    {
        var psi = new ProcessStartInfo(cli) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        sw.Stop();
        var stderr = stderrTask.GetAwaiter().GetResult();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"lorabridge {string.Join(' ', args)} exited with {p.ExitCode}:\n{stdout}\n{stderr}");
        // A build from before the timings line (--baseline-cli) gives the whole-process figure only.
        var line = stderr.Split('\n').LastOrDefault(l => l.StartsWith("timings:", StringComparison.Ordinal)) ?? "";
        var timings = new Dictionary<string, double>(StringComparer.Ordinal);
        string cache = "-";
        foreach (Match m in Regex.Matches(line, @"(\w+)=(\S+)"))
        {
            if (m.Groups[1].Value == "cache") cache = m.Groups[2].Value;
            else if (double.TryParse(m.Groups[2].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) timings[m.Groups[1].Value] = v;
        }
        return new CliRun(sw.Elapsed, timings, cache);
    }

    private static double RunFloor(string python, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import torch, numpy, PIL");
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        sw.Stop();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{python} could not import torch, numpy, PIL: {err}");
        return sw.Elapsed.TotalMilliseconds;
    }

    internal static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    internal static string Load()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
    }

    internal static string? FindCli()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (!File.Exists(Path.Combine(d.FullName, "LoraBridge.sln"))) continue;
            var exe = Path.Combine(d.FullName, "src", "LoraBridge.Cli", "bin", "Release", "net10.0", "lorabridge");
            return File.Exists(exe) ? exe : null;
        }
        return null;
    }
}
