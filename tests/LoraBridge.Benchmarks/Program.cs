// Benchmarks, one command each: `dotnet run -c Release --project tests/LoraBridge.Benchmarks -- NAME [args]`.
// Each prints its own baseline measured in the same run and the ratio against it.
using LoraBridge.Benchmarks;

var benchmarks = new SortedDictionary<string, Func<string[], int>>(StringComparer.OrdinalIgnoreCase)
{
    // one line per benchmark: ["name"] = Class.Run,
    ["python-bridge"] = PythonBridgeBenchmark.Run,
    ["prompt"] = PromptBenchmark.Run,
    ["tokenizer"] = TokenizerBenchmark.Run,
    ["host-overhead"] = HostOverheadBenchmark.Run,
    ["startup"] = StartupBenchmark.Run,
    ["extensions-startup"] = ExtensionStartupBenchmark.Run,
    ["embeddings"] = EmbeddingBenchmark.Run,
    ["catalog"] = CatalogBenchmark.Run,
    ["preview"] = PreviewBenchmark.Run,
    ["serve-load"] = ServeLoadBenchmark.Run,
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine("usage: LoraBridge.Benchmarks NAME [args]; NAME is one of: " + string.Join(", ", benchmarks.Keys));
    return args.Length == 0 ? 0 : 2;
}
return run(args[1..]);
