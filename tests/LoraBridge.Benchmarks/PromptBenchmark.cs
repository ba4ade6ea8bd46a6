using System.Diagnostics;
using System.Text.Json;
using LoraBridge.Prompting;

namespace LoraBridge.Benchmarks;

/// <summary>
/// Prompt plans per second over the public conformance corpus on one thread, against a baseline that only reads
/// and JSON-parses the same records. Usage: <c>prompt [path/to/public.jsonl] [seconds-per-measurement]</c>.
/// </summary>
public static class PromptBenchmark
{
    public static int Run(string[] args)
    {
        var path = args.Length > 0 ? args[0] : FindCorpus();
        if (path is null || !File.Exists(path))
        {
            Console.Error.WriteLine($"prompt benchmark: corpus not found ({path ?? "<repo>/../shared/conformance/prompts/public.jsonl"}); pass its path as the first argument");
            return 2;
        }
        double seconds = args.Length > 1 && double.TryParse(args[1], System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : 2.0;
        var lines = File.ReadAllLines(path);
        var requests = lines.Select(Read).ToArray();
        Console.WriteLine($"corpus: {path} ({requests.Length} records, {requests.Select(r => r.Prompt).Distinct().Count()} prompts), {seconds}s per measurement, one thread");

        double baseline = Measure("baseline: JSON-parse record", seconds, lines.Length, i => Read(lines[i]).Steps);
        double plan = Measure("PromptPlan.Create", seconds, requests.Length, i =>
        {
            var r = requests[i];
            return PromptPlan.Create(r.Prompt, r.Steps, r.Hires).Passes.Count;
        });
        double a1111 = Measure("A1111Result.Compute (all record fields)", seconds, requests.Length, i =>
        {
            var r = requests[i];
            return A1111Result.Compute(r.Prompt, r.Steps, r.Hires).Attention.Count;
        });
        double jsonl = Measure("A1111Result + JSON line (plan --jsonl)", seconds, requests.Length, i =>
        {
            var r = requests[i];
            return A1111Result.Compute(r.Prompt, r.Steps, r.Hires).ToJsonLine().Length;
        });
        Console.WriteLine();
        Console.WriteLine($"ratio PromptPlan.Create / baseline:        {plan / baseline:F3}");
        Console.WriteLine($"ratio A1111Result.Compute / baseline:      {a1111 / baseline:F3}");
        Console.WriteLine($"ratio A1111Result + JSON line / baseline:  {jsonl / baseline:F3}");
        return 0;
    }

    private static (string Prompt, int Steps, int? Hires) Read(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        var h = r.GetProperty("hires_steps");
        return (r.GetProperty("prompt").GetString()!, r.GetProperty("steps").GetInt32(), h.ValueKind == JsonValueKind.Null ? null : h.GetInt32());
    }

    private static double Measure(string name, double seconds, int count, Func<int, int> op)
    {
        long sink = 0;
        for (int i = 0; i < count; i++) sink += op(i); // warm-up pass over the whole corpus
        long done = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            for (int i = 0; i < count; i++) sink += op(i);
            done += count;
        }
        double perSecond = done / sw.Elapsed.TotalSeconds;
        Console.WriteLine($"{name,-42} {perSecond,12:N0} /s  ({done} in {sw.Elapsed.TotalSeconds:F2}s, checksum {sink})");
        return perSecond;
    }

    private static string? FindCorpus()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "..", "shared", "conformance", "prompts", "public.jsonl");
                if (File.Exists(Path.Combine(dir.FullName, "LoraBridge.sln")) && File.Exists(candidate)) return Path.GetFullPath(candidate);
            }
        }
        return null;
    }
}
