using System.Text;
using System.Text.Json;

namespace LoraBridge.Cli.Tests;

public sealed class EmbeddingCommandTests : IDisposable
{
    private readonly string _cwd = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-emb-{Guid.NewGuid():N}")).FullName;
    public void Dispose() => Directory.Delete(_cwd, recursive: true);

    private static void Safetensors(string path, string key, int[] shape, int dropBytes = 0)
    {
        int n = shape.Aggregate(1, (a, b) => a * b) * 4;
        var header = Encoding.UTF8.GetBytes($"{{\"{key}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[0,{n}]}}}}");
        using var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes((long)header.Length));
        ms.Write(header);
        ms.Write(new byte[n]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, ms.ToArray()[..^dropBytes]);
    }

    [Fact]
    public async Task ListReadsSafetensorsHeadersWithoutStartingPython()
    {
        // A checkpoint header with an SD1 text encoder 32 wide, a byte-level vocabulary, three embeddings.
        Safetensors(Path.Combine(_cwd, "model.safetensors"), "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", [10, 32]);
        var tok = Directory.CreateDirectory(Path.Combine(_cwd, "tok")).FullName;
        var entries = new List<string> { "<|startoftext|>", "<|endoftext|>" };
        for (char c = '!'; c <= '~'; c++) { entries.Add(c.ToString()); entries.Add(c + "</w>"); }
        File.WriteAllText(Path.Combine(tok, "vocab.json"), JsonSerializer.Serialize(entries.Select((e, i) => (e, i)).ToDictionary(x => x.e, x => x.i)));
        File.WriteAllText(Path.Combine(tok, "merges.txt"), "#version: 0.2\n");
        var emb = Path.Combine(_cwd, "emb");
        Safetensors(Path.Combine(emb, "good.safetensors"), "emb_params", [2, 32]);
        Safetensors(Path.Combine(emb, "sub", "wide.safetensors"), "emb_params", [1, 48]);
        Safetensors(Path.Combine(emb, "broken.safetensors"), "emb_params", [2, 32], dropBytes: 5);

        // --python /nonexistent: starting Python would fail, so a zero exit shows it was not needed.
        var (code, stdout, stderr) = await CliProcess.RunAsync(["embeddings", "list", "--json", "--checkpoint", Path.Combine(_cwd, "model.safetensors"),
            "--tokenizer", tok, "--embeddings-dir", emb, "--python", "/nonexistent", "--data-dir", Path.Combine(_cwd, "data")], _cwd);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var rows = JsonDocument.Parse(stdout).RootElement.EnumerateArray()
            .Select(r => (Name: r.GetProperty("name").GetString(), File: r.GetProperty("file").GetString(), Status: r.GetProperty("status").GetString(),
                Width: r.GetProperty("width").ValueKind == JsonValueKind.Number ? r.GetProperty("width").GetInt32() : -1,
                Reason: r.GetProperty("reason").GetString()))
            .ToList();
        Assert.Equal(("good", "good.safetensors", "loaded", 32), (rows[0].Name, rows[0].File, rows[0].Status, rows[0].Width));
        Assert.Equal(("wide", "sub/wide.safetensors", "skipped", 48), (rows[1].Name, rows[1].File, rows[1].Status, rows[1].Width));
        Assert.Equal(("broken.safetensors", "error"), (rows[2].File, rows[2].Status));
        Assert.Contains("broken.safetensors", rows[2].Reason);
    }
}
