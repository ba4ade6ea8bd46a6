using LoraBridge.Engine;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>The samples in extensions/ that use Python (CfgRescale, LatentPreview), on the demo model.</summary>
[Collection("python")]
public sealed class SamplePythonTests(PythonHostFixture f) : IDisposable
{
    private static readonly string Samples = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../extensions"));
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-ext-sample-py").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private ExtensionSet Load(string sample, Dictionary<string, string> settings)
    {
        var set = ExtensionLoader.Load([Samples], new ExtensionHost(Path.Combine(_dir, "data"), k => settings.GetValueOrDefault(k), _ => { }, () => f.Bridge));
        var unit = Assert.Single(set.Units, u => u.Name == sample);
        Assert.True(unit.Status == ExtensionStatus.Loaded, $"{unit.LoadError} {string.Join("\n", unit.Errors)}");
        return set;
    }

    private GenerationRequest Request() => new()
    {
        Prompt = "a lighthouse", Seed = 21, Steps = 4, Width = 64, Height = 64, CfgScale = 12,
        OutputDir = Path.Combine(_dir, "out-" + Guid.NewGuid().ToString("N")),
    };

    private async Task<GeneratedImage> GenerateAsync(IGenerationHooks? hooks)
    {
        f.Workspace.Engine.Hooks = hooks;
        try
        {
            return Assert.Single(await f.Workspace.GenerateAsync(Request(), null, CancellationToken.None));
        }
        finally
        {
            f.Workspace.Engine.Hooks = null;
        }
    }

    [Fact]
    public async Task CfgRescaleAtZeroEqualsNoExtensionAndRescalesOtherwise()
    {
        var plain = await GenerateAsync(null);
        using (var zero = Load("CfgRescale", new() { ["CfgRescale:Multiplier"] = "0" }))
        {
            Assert.True(zero.HasAfterCfg);
            var atZero = await GenerateAsync(zero);
            Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(atZero.Path));
        }
        using var set = Load("CfgRescale", new() { ["CfgRescale:Multiplier"] = "0.7" });
        var rescaled = await GenerateAsync(set);
        Assert.Equal("0.7", Infotext.Parse(rescaled.Infotext)["CFG Rescale phi"]);
        using var a = SKBitmap.Decode(plain.Path);
        using var b = SKBitmap.Decode(rescaled.Path);
        Assert.NotEqual(a.Bytes, b.Bytes);
    }

    [Fact]
    public void CfgRescaleRefusesABadMultiplierNamingIt()
    {
        var set = ExtensionLoader.Load([Samples], new ExtensionHost(Path.Combine(_dir, "data"),
            k => k == "CfgRescale:Multiplier" ? "1.5" : null, _ => { }, () => f.Bridge));
        using (set)
        {
            var unit = Assert.Single(set.Units, u => u.Name == "CfgRescale");
            Assert.Equal(ExtensionStatus.LoadFailed, unit.Status);
            Assert.Contains("CfgRescale:Multiplier must be a number from 0 to 1, got \"1.5\"", unit.LoadError);
        }
    }

    [Fact]
    public async Task LatentPreviewWritesOneCheapPreviewPerStep()
    {
        using var set = Load("LatentPreview", new() { ["LatentPreview:Dir"] = "previews" });
        var image = await GenerateAsync(set);
        var job = Path.Combine(_dir, "data", "previews", "job-0000");
        var files = Directory.GetFiles(job).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["step-001.png", "step-002.png", "step-003.png", "step-004.png"], files);
        var pixels = files.Select(p =>
        {
            using var bitmap = SKBitmap.Decode(Path.Combine(job, p!));
            Assert.Equal((8, 8), (bitmap.Width, bitmap.Height)); // one pixel per latent pixel (64 / 8)
            return bitmap.Bytes;
        }).ToList();
        Assert.NotEqual(pixels[0], pixels[3]);
        // Previews only look: the image is the one made without the extension.
        var plain = await GenerateAsync(null);
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(image.Path));
    }
}
