using System.Security.Cryptography;
using SkiaSharp;

namespace LoraBridge.Engine.Tests;

/// <summary>
/// The SDXL demo model (<c>lorabridge-demo-xl</c>) through the real embedded Python: C# plan, SDXL conditioning,
/// step loop, PNG files. Shares the collection's Python session with the SD1 tests.
/// </summary>
[Collection("end-to-end")]
public sealed class SdxlEndToEndTests(EndToEndFixture f) : IAsyncLifetime
{
    private const int Steps = 4;

    private GenerationWorkspace NewWorkspace(string checkpoint) =>
        new(f.Workspace.Sources.Settings with { Checkpoint = checkpoint }, f.Bridge);

    private readonly Lazy<GenerationWorkspace> _xl = new(() => new GenerationWorkspace(
        f.Workspace.Sources.Settings with { Checkpoint = DemoCheckpoints.Sdxl }, f.Bridge));

    private GenerationWorkspace Xl => _xl.Value;

    private GenerationRequest Request(GenerationWorkspace workspace, string prompt, long seed = 7)
    {
        var (w, h) = workspace.Sources.DefaultSize();
        return new() { Prompt = prompt, Seed = seed, Steps = Steps, Width = w, Height = h, OutputDir = f.NewOutputDir() };
    }

    private static async Task<GeneratedImage> OneAsync(GenerationWorkspace workspace, GenerationRequest request)
    {
        var image = Assert.Single(await workspace.GenerateAsync(request, null, CancellationToken.None));
        Assert.True(File.Exists(image.Path), $"{image.Path} was reported but not written");
        return image;
    }

    private static byte[] Pixels(string png, int size = 128)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException($"{png} does not decode");
        Assert.Equal((size, size), (bitmap.Width, bitmap.Height));
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return rgba.Bytes;
    }

    private static double MeanAbsDifference(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    /// <summary>A1111's addnet hash of a safetensors LoRA: SHA-256 of the bytes after the header, first 12 hex digits.</summary>
    private static string AddnetShortHash(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        return Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan((int)(8 + headerLength))))[..12];
    }

    [Fact]
    public async Task TheSdxlDemoWritesA1111InfotextAndTheSameSeedGivesIdenticalBytes()
    {
        const string prompt = "a lighthouse <lora:demo_style_xl:0.8>";
        var dir = f.NewOutputDir();
        var first = await OneAsync(Xl, Request(Xl, prompt) with { OutputDir = dir });
        var second = await OneAsync(Xl, Request(Xl, prompt) with { OutputDir = dir });
        var otherSeed = await OneAsync(Xl, Request(Xl, prompt, seed: 8) with { OutputDir = dir });

        Assert.Equal(["00000-7.png", "00001-7.png", "00002-8.png"], new[] { first, second, otherSeed }.Select(i => Path.GetFileName(i.Path)));
        Assert.Equal(File.ReadAllBytes(first.Path), File.ReadAllBytes(second.Path));
        Assert.NotEqual(Pixels(first.Path), Pixels(otherSeed.Path));

        var checkpoint = await Xl.PrepareAsync(CancellationToken.None);
        Assert.Equal(LoraBridge.Models.BaseFamily.SDXL, checkpoint.Family);
        var lora = Xl.Catalog.Find("demo_style_xl").FilePath;
        var info = Infotext.Parse(PngText.Read(first.Path)["parameters"]);
        Assert.Equal(prompt, info.Prompt);
        Assert.Equal("", info.NegativePrompt);
        // Euler a on "Automatic" resolves to no schedule type of its own, so none is written (as on the SD1 path).
        Assert.Equal(["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "Lora hashes", "Version"],
            info.Parameters.Select(p => p.Key));
        Assert.Equal("4", info["Steps"]);
        Assert.Equal("Euler a", info["Sampler"]);
        Assert.Equal("7", info["CFG scale"]);
        Assert.Equal("7", info["Seed"]);
        Assert.Equal("128x128", info["Size"]);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(checkpoint.Path)))[..10], info["Model hash"]);
        Assert.Equal("lorabridge-demo-xl", info["Model"]);
        Assert.Equal($"demo_style_xl: {AddnetShortHash(lora)}", info["Lora hashes"]);
        Assert.Equal(GenerationEngine.Version, info["Version"]);
    }

    [Fact]
    public async Task TheSdxlLoraAtWeightZeroGivesTheSamePixelsAsNoLoraAndRestoresTheWeights()
    {
        var none = Pixels((await OneAsync(Xl, Request(Xl, "a lighthouse"))).Path);
        var digest = await f.Bridge.GetWeightsDigestAsync();
        var zero = Pixels((await OneAsync(Xl, Request(Xl, "a lighthouse <lora:demo_style_xl:0>"))).Path);
        var one = Pixels((await OneAsync(Xl, Request(Xl, "a lighthouse <lora:demo_style_xl:1>"))).Path);

        Assert.Equal(none, zero);
        Assert.True(MeanAbsDifference(none, one) > 1, $"demo_style_xl at 1 barely changes the image ({MeanAbsDifference(none, one):0.###})");
        Assert.Equal(digest, await f.Bridge.GetWeightsDigestAsync());
    }

    [Fact]
    public async Task AnEmptyNegativePromptDiffersFromAnEncodedOne()
    {
        // Zeroed (A1111's rule for an empty negative) vs the encoding of a non-empty negative: both must run, and differ.
        var empty = Pixels((await OneAsync(Xl, Request(Xl, "a lighthouse"))).Path);
        var blurry = Pixels((await OneAsync(Xl, Request(Xl, "a lighthouse") with { NegativePrompt = "blurry" })).Path);
        Assert.NotEqual(empty, blurry);
    }

    [Fact]
    public async Task AnSd1LoraOnTheSdxlDemoWarnsNamingBothFamiliesAndGenerates()
    {
        var image = await OneAsync(Xl, Request(Xl, "a lighthouse <lora:demo_style:1>"));
        var warning = Assert.Single(Xl.Warnings);
        Assert.Contains("'demo_style' was made for SD1 but the checkpoint is SDXL", warning);
        Assert.Equal(128, Pixels(image.Path).Length / 4 / 128);
    }

    [Fact]
    public async Task AnSdxlLoraOnTheSd1DemoWarnsNamingBothFamiliesAndGenerates()
    {
        await Xl.PrepareAsync(CancellationToken.None); // the XL demo (and its LoRA) exist from here on
        var sd1 = NewWorkspace(DemoCheckpoints.Sd1);
        var image = await OneAsync(sd1, Request(sd1, "a lighthouse <lora:demo_style_xl:1>"));
        var warning = Assert.Single(sd1.Warnings);
        Assert.Contains("'demo_style_xl' was made for SDXL but the checkpoint is SD1", warning);
        Assert.True(File.Exists(image.Path));
        Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
    }

    /// <summary>A header-only safetensors checkpoint with these F32 tensors, its data cut short by <paramref name="missing"/> bytes.</summary>
    private string SyntheticCheckpoint(string name, (string Key, long[] Shape)[] tensors, int missing = 0)
    {
        long offset = 0;
        var entries = new List<string>();
        foreach (var (key, shape) in tensors)
        {
            long bytes = 4 * shape.Aggregate(1L, (a, b) => a * b);
            entries.Add($"\"{key}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        var header = System.Text.Encoding.UTF8.GetBytes("{" + string.Join(",", entries) + "}");
        var path = Path.Combine(f.TempDir, name);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((long)header.Length));
        stream.Write(header);
        stream.Write(new byte[offset - missing]);
        return path;
    }

    [Fact]
    public async Task ARefinerShapedCheckpointIsRefusedNamingItsFamilyAndATruncatedSdxlFileNamesTheTensor()
    {
        const string unetIn = "model.diffusion_model.input_blocks.0.0.weight";
        var refiner = SyntheticCheckpoint("refiner.safetensors", [(unetIn, [8, 4, 3, 3]), ("conditioner.embedders.0.model.ln_final.weight", [4])]);
        var e = await Assert.ThrowsAsync<LoraBridge.Models.ModelFileException>(() => NewWorkspace(refiner).PrepareAsync(CancellationToken.None));
        Assert.Equal(refiner, e.FilePath);
        Assert.Contains("SDXL refiner", e.Message);

        var inpaint = SyntheticCheckpoint("xl-inpaint.safetensors", [(unetIn, [8, 9, 3, 3]),
            ("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", [4]), ("conditioner.embedders.1.model.ln_final.weight", [4])]);
        e = await Assert.ThrowsAsync<LoraBridge.Models.ModelFileException>(() => NewWorkspace(inpaint).PrepareAsync(CancellationToken.None));
        Assert.Contains("SDXL inpainting (9-channel", e.Message);

        var truncated = SyntheticCheckpoint("truncated-xl.safetensors", [(unetIn, [8, 4, 3, 3]),
            ("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", [4]), ("conditioner.embedders.1.model.ln_final.weight", [4])], missing: 8);
        e = await Assert.ThrowsAsync<LoraBridge.Models.ModelFileException>(() => NewWorkspace(truncated).PrepareAsync(CancellationToken.None));
        Assert.Equal(truncated, e.FilePath);
        Assert.Contains("conditioner.embedders.1.model.ln_final.weight", e.Message);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>
    /// Loads the SD1 demo back through the collection's own workspace, so its engine sees the reload (and drops its
    /// cached conditionings) instead of finding its checkpoint "still loaded" after another model was in between.
    /// </summary>
    public async Task DisposeAsync()
    {
        var request = new GenerationRequest { Prompt = "a", Steps = 1, Width = 64, Height = 64, Seed = 1, OutputDir = f.NewOutputDir() };
        await f.Workspace.GenerateAsync(request, null, CancellationToken.None);
        Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
    }
}
