using System.Diagnostics;

namespace LoraBridge.Engine.Tests;

/// <summary>
/// ../shared/conformance/embeddings: the work of <c>lorabridge conformance embeddings</c> on every public record, checked
/// by the reference checker (database, lines, encode calls, TI hashes, token counter, errors and text-encoder output).
/// </summary>
[Collection("end-to-end")]
public sealed class EmbeddingConformanceTests(EndToEndFixture f)
{
    private static string Shared => SharedData.Dir;

    [SharedFact]
    public async Task EveryPublicRecordPasses()
    {
        var conf = Path.Combine(Shared, "conformance", "embeddings");
        var outDir = Path.Combine(f.TempDir, "emb-conformance");
        int n = await EmbeddingConformance.RunAsync(Path.Combine(conf, "public.jsonl"), outDir, Path.Combine(conf, "embeddings"),
            Path.Combine(Shared, "conformance", "models", "clip_small", "weights.safetensors"), Path.Combine(Shared, "data", "clip"),
            f.Bridge, TextWriter.Null, CancellationToken.None);
        Assert.True(n > 200, $"only {n} records");

        var psi = new ProcessStartInfo(EndToEndFixture.SystemPython)
        {
            ArgumentList = { Path.Combine(conf, "compare_embeddings.py"), Path.Combine(outDir, "records.jsonl"),
                "--cand-db", Path.Combine(outDir, "db.json"), "--cand-cond", Path.Combine(outDir, "cond"), "--quiet" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        string stdout = await p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"compare_embeddings.py failed:\n{stdout}\n{stderr}");
        Assert.Contains($"{n}/{n} records pass", stdout);
    }
}
