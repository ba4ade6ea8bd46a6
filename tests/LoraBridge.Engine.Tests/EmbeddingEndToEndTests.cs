using System.Text;
using LoraBridge.Models;
using SkiaSharp;

namespace LoraBridge.Engine.Tests;

/// <summary>Textual-inversion embeddings through the real embedded Python on the demo model (text encoder width 64).</summary>
[Collection("end-to-end")]
public sealed class EmbeddingEndToEndTests(EndToEndFixture f)
{
    private const int Size = 64;

    /// <summary>A safetensors embedding: one tensor <c>emb_params</c> [rows, width], deterministic values.</summary>
    private static string WriteEmbedding(string path, int rows, int width, int seed, bool truncate = false)
    {
        var header = Encoding.UTF8.GetBytes($"{{\"emb_params\":{{\"dtype\":\"F32\",\"shape\":[{rows},{width}],\"data_offsets\":[0,{rows * width * 4}]}}}}");
        var rng = new Random(seed);
        var data = new byte[rows * width * 4];
        for (int i = 0; i < rows * width; i++) BitConverter.TryWriteBytes(data.AsSpan(i * 4), (float)(rng.NextDouble() * 2 - 1));
        using var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes((long)header.Length));
        ms.Write(header);
        ms.Write(data);
        var bytes = ms.ToArray();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, truncate ? bytes[..^7] : bytes);
        return path;
    }

    /// <summary>An SDXL safetensors embedding: <c>clip_g</c> and <c>clip_l</c> [rows, width], deterministic values.</summary>
    private static string WriteSdxlEmbedding(string path, int rows, int widthL, int widthG, int seed)
    {
        var rng = new Random(seed);
        int bytesL = rows * widthL * 4, bytesG = rows * widthG * 4;
        var header = Encoding.UTF8.GetBytes(
            $"{{\"clip_g\":{{\"dtype\":\"F32\",\"shape\":[{rows},{widthG}],\"data_offsets\":[0,{bytesG}]}}," +
            $"\"clip_l\":{{\"dtype\":\"F32\",\"shape\":[{rows},{widthL}],\"data_offsets\":[{bytesG},{bytesG + bytesL}]}}}}");
        var data = new byte[bytesG + bytesL];
        for (int i = 0; i < data.Length / 4; i++) BitConverter.TryWriteBytes(data.AsSpan(i * 4), (float)(rng.NextDouble() * 2 - 1));
        using var ms = new MemoryStream();
        ms.Write(BitConverter.GetBytes((long)header.Length));
        ms.Write(header);
        ms.Write(data);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, ms.ToArray());
        return path;
    }

    private GenerationWorkspace Workspace(string embeddingsDir) =>
        new(new WorkspaceSettings { DataDir = Path.Combine(f.TempDir, "data"), EmbeddingDirs = [embeddingsDir] }, f.Bridge);

    private GenerationRequest Request(string prompt, string outputDir) => new()
    {
        Prompt = prompt,
        NegativePrompt = "blurry",
        Seed = 11,
        Steps = 3,
        Width = Size,
        Height = Size,
        OutputDir = outputDir,
    };

    private static byte[] Pixels(string png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException($"{png} does not decode");
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return rgba.Bytes;
    }

    [Fact]
    public async Task EmbeddingWithLoraChangesTheImageRerunsIdenticallyAndIsHashed()
    {
        var withDir = Path.Combine(f.TempDir, "emb-with-" + Guid.NewGuid().ToString("N"));
        var file = WriteEmbedding(Path.Combine(withDir, "glowstyle.safetensors"), 2, 64, seed: 3);
        var withoutDir = Directory.CreateDirectory(Path.Combine(f.TempDir, "emb-without-" + Guid.NewGuid().ToString("N"))).FullName;
        const string prompt = "a lighthouse, glowstyle <lora:demo_style:0.8>";
        var outDir = f.NewOutputDir();

        var with = Workspace(withDir);
        var first = Assert.Single(await with.GenerateAsync(Request(prompt, outDir), null, CancellationToken.None));
        var again = Assert.Single(await with.GenerateAsync(Request(prompt, outDir), null, CancellationToken.None));
        var without = Assert.Single(await Workspace(withoutDir).GenerateAsync(Request(prompt, f.NewOutputDir()), null, CancellationToken.None));

        Assert.Equal(File.ReadAllBytes(first.Path), File.ReadAllBytes(again.Path));
        Assert.NotEqual(Pixels(first.Path), Pixels(without.Path));
        string shortHash = ModelHashes.FileSha256(file)[..12];
        var info = Infotext.Parse(first.Infotext);
        Assert.NotNull(info["Lora hashes"]);
        Assert.Equal($"glowstyle: {shortHash}", info["TI hashes"]);
        Assert.Null(Infotext.Parse(without.Infotext)["TI hashes"]);
        // A1111's order: Lora hashes, then TI hashes, then Version.
        var keys = info.Parameters.Select(p => p.Key).ToList();
        Assert.True(keys.IndexOf("Lora hashes") < keys.IndexOf("TI hashes") && keys.IndexOf("TI hashes") < keys.IndexOf("Version"));
    }

    [Fact]
    public async Task SdxlEmbeddingWithSdxlLoraOnTheSdxlDemoChangesTheImageAndIsHashed()
    {
        // The SDXL demo's encoders are 32 wide each: A1111's width check compares clip_l + clip_g = 64 with their sum.
        var withDir = Path.Combine(f.TempDir, "emb-xl-" + Guid.NewGuid().ToString("N"));
        var file = WriteSdxlEmbedding(Path.Combine(withDir, "glowxl.safetensors"), 2, 32, 32, seed: 8);
        var withoutDir = Directory.CreateDirectory(Path.Combine(f.TempDir, "emb-xl-none-" + Guid.NewGuid().ToString("N"))).FullName;
        GenerationWorkspace Xl(string dir) => new(new WorkspaceSettings
        {
            DataDir = Path.Combine(f.TempDir, "data"), EmbeddingDirs = [dir], Checkpoint = DemoCheckpoints.Sdxl,
        }, f.Bridge);
        const string prompt = "a lighthouse, glowxl <lora:demo_style_xl:0.8>";
        var with = Xl(withDir);
        var first = Assert.Single(await with.GenerateAsync(Request(prompt, f.NewOutputDir()), null, CancellationToken.None));
        var again = Assert.Single(await with.GenerateAsync(Request(prompt, f.NewOutputDir()), null, CancellationToken.None));
        var without = Assert.Single(await Xl(withoutDir).GenerateAsync(Request(prompt, f.NewOutputDir()), null, CancellationToken.None));

        Assert.DoesNotContain(with.Warnings, w => w.Contains("embedding", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(Pixels(first.Path), Pixels(again.Path));
        Assert.NotEqual(Pixels(first.Path), Pixels(without.Path));
        var info = Infotext.Parse(first.Infotext);
        Assert.NotNull(info["Lora hashes"]);
        Assert.Equal($"glowxl: {ModelHashes.FileSha256(file)[..12]}", info["TI hashes"]);
    }

    [Fact]
    public async Task BadFilesAreReportedAndTheRestLoads()
    {
        var dir = Path.Combine(f.TempDir, "emb-bad-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var marker = Path.Combine(dir, "marker");
        // A plain pickle calling os.system("touch marker"): refused by the restricted unpickler, never run.
        var evil = new MemoryStream();
        evil.Write([0x80, 0x02]);
        evil.Write(Encoding.ASCII.GetBytes("cposix\nsystem\n"));
        var cmd = Encoding.UTF8.GetBytes("touch " + marker);
        evil.WriteByte((byte)'X');
        evil.Write(BitConverter.GetBytes(cmd.Length));
        evil.Write(cmd);
        evil.Write([0x85, (byte)'R', (byte)'.']);
        File.WriteAllBytes(Path.Combine(dir, "evil.pt"), evil.ToArray());
        WriteEmbedding(Path.Combine(dir, "broken.safetensors"), 2, 64, seed: 4, truncate: true);
        WriteEmbedding(Path.Combine(dir, "narrow.safetensors"), 2, 32, seed: 5);
        WriteEmbedding(Path.Combine(dir, "good.safetensors"), 1, 64, seed: 6);

        var ws = Workspace(dir);
        var checkpoint = await ws.PrepareAsync(CancellationToken.None);
        var db = checkpoint.Embeddings!;
        Assert.False(File.Exists(marker), "the pickle's code ran");
        Assert.Equal(["good"], db.Loaded.Select(e => e.Name));
        Assert.Equal(["narrow"], db.Skipped.Select(e => e.Name));
        Assert.Equal(["broken.safetensors", "evil.pt"], db.Errors.Select(e => e.File.RelativePath).Order());
        Assert.Equal("data_issue", db.Errors.Single(e => e.File.RelativePath == "evil.pt").Kind);
        Assert.Contains("broken.safetensors", db.Errors.Single(e => e.File.RelativePath == "broken.safetensors").Message);
        var rows = EmbeddingReports.List(db);
        Assert.Contains(rows, r => r.File == "narrow.safetensors" && r.Status == "skipped");

        // The skipped name stays plain text: the same pixels as without any embeddings folder.
        var empty = Directory.CreateDirectory(Path.Combine(f.TempDir, "emb-none-" + Guid.NewGuid().ToString("N"))).FullName;
        var narrow = Assert.Single(await ws.GenerateAsync(Request("a narrow tower", f.NewOutputDir()), null, CancellationToken.None));
        var plain = Assert.Single(await Workspace(empty).GenerateAsync(Request("a narrow tower", f.NewOutputDir()), null, CancellationToken.None));
        Assert.Equal(Pixels(plain.Path), Pixels(narrow.Path));
        Assert.Null(Infotext.Parse(narrow.Infotext)["TI hashes"]);
        // The loaded one is used in the negative prompt too, and named in the infotext.
        var neg = Assert.Single(await ws.GenerateAsync(Request("a narrow tower", f.NewOutputDir()) with { NegativePrompt = "good" }, null, CancellationToken.None));
        Assert.Equal($"good: {ModelHashes.FileSha256(Path.Combine(dir, "good.safetensors"))[..12]}", Infotext.Parse(neg.Infotext)["TI hashes"]);
    }
}
