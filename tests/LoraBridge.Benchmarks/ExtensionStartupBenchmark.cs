using System.Globalization;

namespace LoraBridge.Benchmarks;

/// <summary>
/// <c>extensions-startup [--repeats N] [--cli PATH]</c>: how much loading extensions adds to a command's start. Runs the
/// built CLI's <c>extensions list</c> (it loads extensions exactly as <c>generate</c>, <c>batch</c>, <c>tui</c> and
/// <c>serve</c> do, without starting Python) over an empty folder (baseline), over the samples in <c>extensions/</c>
/// with the compiled-extension cache warm (unchanged extensions), and with a fresh data folder each time (cold: Roslyn
/// compiles). Interleaved repetitions; medians of whole-process wall time.
/// </summary>
internal static class ExtensionStartupBenchmark
{
    public static int Run(string[] args)
    {
        int repeats = 9;
        string? cli = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--repeats") repeats = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            else if (args[i] == "--cli") cli = args[i + 1];
            else { Console.Error.WriteLine($"extensions-startup: unexpected '{args[i]}'"); return 2; }
        }
        cli ??= StartupBenchmark.FindCli();
        if (cli is null)
        {
            Console.Error.WriteLine("extensions-startup: the lorabridge executable was not found; build src/LoraBridge.Cli -c Release or pass --cli");
            return 2;
        }
        var samples = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../extensions"));
        var work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-ext-startup-{Guid.NewGuid():N}")).FullName;
        try
        {
            var empty = Directory.CreateDirectory(Path.Combine(work, "empty")).FullName;
            var warmData = Path.Combine(work, "data-warm");
            string[] List(string dir, string data) => ["extensions", "list", "--dir", dir, "--data-dir", data];
            // Warm-up: JIT/disk caches, and fills the warm data folder's compiled-extension cache.
            StartupBenchmark.RunCli(cli, List(empty, warmData), work);
            StartupBenchmark.RunCli(cli, List(samples, warmData), work);
            var none = new List<double>();
            var cached = new List<double>();
            var cold = new List<double>();
            for (int r = 0; r < repeats; r++)
            {
                none.Add(StartupBenchmark.RunCli(cli, List(empty, warmData), work).Wall.TotalMilliseconds);
                cached.Add(StartupBenchmark.RunCli(cli, List(samples, warmData), work).Wall.TotalMilliseconds);
                cold.Add(StartupBenchmark.RunCli(cli, List(samples, Path.Combine(work, $"data-cold-{r}")), work).Wall.TotalMilliseconds);
            }
            double n = StartupBenchmark.Median(none), c = StartupBenchmark.Median(cached), k = StartupBenchmark.Median(cold);
            int units = Directory.GetFiles(samples, "*.cs").Length + Directory.GetDirectories(samples).Count(d => Directory.GetFiles(d, "*.cs", SearchOption.AllDirectories).Length > 0);
            Console.WriteLine($"extensions-startup: {cli} extensions list, {units} sample units from {samples}, {repeats} interleaved repeats, machine load {StartupBenchmark.Load()}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"no extensions (baseline)         {n,8:0} ms"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"unchanged extensions (cache)     {c,8:0} ms  +{c - n:0} ms over baseline (acceptance: ≤ 300 ms) ratio {c / n:0.00}×"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"changed extensions (Roslyn)      {k,8:0} ms  +{k - n:0} ms over baseline, ratio {k / n:0.00}×"));
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
