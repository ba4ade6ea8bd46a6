using LoraBridge.Engine;
using SkiaSharp;

namespace LoraBridge.Extensions.Tests;

/// <summary>The samples in extensions/ that use Python (CfgRescale, LatentPreview), on the demo models.</summary>
[Collection("python")]
public sealed class SamplePythonTests(PythonHostFixture f) : HookTestBase(f, "lb-ext-sample-py")
{
    private ExtensionSet LoadSample(string sample, Dictionary<string, string> settings, IEnumerable<string>? modelsDirs = null)
    {
        var set = ExtensionLoader.Load([Samples], Host(settings, modelsDirs));
        var unit = Assert.Single(set.Units, u => u.Name == sample);
        Assert.True(unit.Status == ExtensionStatus.Loaded, $"{unit.LoadError} {string.Join("\n", unit.Errors)}");
        return set;
    }

    private GenerationRequest SampleRequest() => Request(21, "a lighthouse") with { CfgScale = 12 };

    private async Task<GeneratedImage> GenerateOneAsync(IGenerationHooks? hooks) => Assert.Single(await GenerateAsync(SampleRequest(), hooks));

    [Fact]
    public async Task CfgRescaleAtZeroEqualsNoExtensionAndRescalesOtherwise()
    {
        var plain = await GenerateOneAsync(null);
        using (var zero = LoadSample("CfgRescale", new() { ["CfgRescale:Multiplier"] = "0" }))
        {
            Assert.True(zero.HasAfterCfg);
            var atZero = await GenerateOneAsync(zero);
            Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(atZero.Path));
        }
        using var set = LoadSample("CfgRescale", new() { ["CfgRescale:Multiplier"] = "0.7" });
        var rescaled = await GenerateOneAsync(set);
        Assert.Equal("0.7", Infotext.Parse(rescaled.Infotext)["CFG Rescale phi"]);
        using var a = SKBitmap.Decode(plain.Path);
        using var b = SKBitmap.Decode(rescaled.Path);
        Assert.NotEqual(a.Bytes, b.Bytes);
    }

    [Fact]
    public void CfgRescaleRefusesABadMultiplierNamingIt()
    {
        using var set = ExtensionLoader.Load([Samples], Host(new Dictionary<string, string> { ["CfgRescale:Multiplier"] = "1.5" }));
        var unit = Assert.Single(set.Units, u => u.Name == "CfgRescale");
        Assert.Equal(ExtensionStatus.LoadFailed, unit.Status);
        Assert.Contains("CfgRescale:Multiplier must be a number from 0 to 1, got \"1.5\"", unit.LoadError);
    }

    /// <summary>The preview PNGs of the newest job under <c>data/previews</c>, in step order, with their sizes.</summary>
    private List<(string File, int Width, int Height, byte[] Pixels)> Previews(string dir = "previews")
    {
        var job = Directory.GetDirectories(Path.Combine(Dir, "data", dir), "job-*").Order(StringComparer.Ordinal).Last();
        return Directory.GetFiles(job).Order(StringComparer.Ordinal).Select(p =>
        {
            using var bitmap = SKBitmap.Decode(p) ?? throw new InvalidDataException($"{p} does not decode");
            return (Path.GetFileName(p), bitmap.Width, bitmap.Height, Pixels(p));
        }).ToList();
    }

    [Fact]
    public async Task LatentPreviewWritesOneCheapPreviewPerStep()
    {
        using var set = LoadSample("LatentPreview", new() { ["LatentPreview:Dir"] = "previews" });
        var image = await GenerateOneAsync(set);
        var previews = Previews();
        Assert.Equal(["step-001.png", "step-002.png", "step-003.png", "step-004.png"], previews.Select(p => p.File));
        Assert.All(previews, p => Assert.Equal((8, 8), (p.Width, p.Height))); // one pixel per latent pixel (64 / 8)
        Assert.NotEqual(previews[0].Pixels, previews[3].Pixels);
        // Previews only look: the image is the one made without the extension.
        var plain = await GenerateOneAsync(null);
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(image.Path));
    }

    /// <summary>Writes a TAESD decoder with seeded random weights in the published key layout (.safetensors or .pth).</summary>
    private async Task WriteTaesdAsync(string path, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await Host().RunPythonAsync("""
            import torch
            from lorabridge.checkpoint import save_safetensors
            from lorabridge.taesd import TaesdDecoder

            torch.manual_seed(int(seed))
            weights = TaesdDecoder().state_dict()
            if path.endswith(".safetensors"):
                save_safetensors(path, weights)
            else:
                torch.save(weights, path)
            """, new Dictionary<string, string> { ["path"] = path, ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    /// <summary>An A1111 folder and the models folders the CLI lends extensions for it (<c>--webui-dir</c>, then the data folder's).</summary>
    private (string VaeApprox, IReadOnlyList<string> ModelsDirs) WebUi()
    {
        var webui = Directory.CreateDirectory(Path.Combine(Dir, "webui")).FullName;
        var dirs = UpscalerLocations.ModelsDirs(new WorkspaceSettings { WebUiDir = webui, DataDir = Path.Combine(Dir, "lorabridge-data") });
        return (Path.Combine(webui, "models", "VAE-approx"), dirs);
    }

    [Fact]
    public async Task LatentPreviewUsesTheTaesdDecoderOfTheModelsFamilyFromTheWebuiModelsFolder()
    {
        var (vaeApprox, modelsDirs) = WebUi();
        Assert.Equal(Path.Combine(Dir, "webui", "models"), modelsDirs[0]);
        var settings = new Dictionary<string, string> { ["LatentPreview:Dir"] = "previews" };
        using var set = LoadSample("LatentPreview", settings, modelsDirs);

        // No file (and only the SDXL decoder, which does not fit this SD1 model): the cheap 8x8 preview.
        var plain = await GenerateOneAsync(null);
        await GenerateOneAsync(set);
        Assert.All(Previews(), p => Assert.Equal((8, 8), (p.Width, p.Height)));
        await WriteTaesdAsync(Path.Combine(vaeApprox, "taesdxl_decoder.safetensors"), 1);
        await GenerateOneAsync(set);
        Assert.All(Previews(), p => Assert.Equal((8, 8), (p.Width, p.Height)));

        // A1111's taesd_decoder.pth: TAESD previews, 8x the latent (64x64), one per step, different steps differ;
        // the image is untouched.
        await WriteTaesdAsync(Path.Combine(vaeApprox, "taesd_decoder.pth"), 2);
        var image = await GenerateOneAsync(set);
        var taesd = Previews();
        Assert.Equal(4, taesd.Count);
        Assert.All(taesd, p => Assert.Equal((Size, Size), (p.Width, p.Height)));
        Assert.NotEqual(taesd[0].Pixels, taesd[3].Pixels);
        Assert.Equal(File.ReadAllBytes(plain.Path), File.ReadAllBytes(image.Path));

        // LatentPreview:Decoder=approx ignores the file.
        settings["LatentPreview:Decoder"] = "approx";
        using var approx = LoadSample("LatentPreview", settings, modelsDirs);
        await GenerateOneAsync(approx);
        Assert.All(Previews(), p => Assert.Equal((8, 8), (p.Width, p.Height)));
    }

    [Fact]
    public async Task LatentPreviewRefusesABadDecoderSettingAMissingFileAndAHostileOne()
    {
        var (vaeApprox, modelsDirs) = WebUi();
        using (var bad = ExtensionLoader.Load([Samples], Host(new Dictionary<string, string> { ["LatentPreview:Decoder"] = "vae" }, modelsDirs)))
        {
            var unit = Assert.Single(bad.Units, u => u.Name == "LatentPreview");
            Assert.Equal(ExtensionStatus.LoadFailed, unit.Status);
            Assert.Contains("LatentPreview:Decoder must be approx, taesd or auto, got \"vae\"", unit.LoadError);
        }

        var settings = new Dictionary<string, string> { ["LatentPreview:Dir"] = "previews", ["LatentPreview:Decoder"] = "taesd" };
        using (var set = LoadSample("LatentPreview", settings, modelsDirs))
        {
            var request = SampleRequest();
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(request, set));
            Assert.Equal(("LatentPreview", "AfterCfgAsync"), (ex.Extension, ex.Hook));
            var inner = Assert.IsType<ExtensionPythonException>(ex.InnerException);
            Assert.Equal("FileNotFoundError", inner.PythonType);
            Assert.Contains("no taesd_decoder.safetensors or taesd_decoder.pth for this SD1 model was found in " + vaeApprox, inner.Message);
            Assert.False(Directory.Exists(request.OutputDir) && Directory.EnumerateFileSystemEntries(request.OutputDir).Any(), "a file was written");
        }

        // A .pth that would run code when unpickled is refused without running it; auto does not fall back silently.
        Directory.CreateDirectory(vaeApprox);
        var marker = Path.Combine(Dir, "pwned");
        await Host().RunPythonAsync("""
            import os
            import torch
            from lorabridge.taesd import TaesdDecoder

            class Hostile:
                def __reduce__(self):
                    return (os.system, ("touch '" + marker + "'",))

            torch.save(dict(TaesdDecoder().state_dict(), hook=Hostile()), path)
            """, new Dictionary<string, string> { ["path"] = Path.Combine(vaeApprox, "taesd_decoder.pth"), ["marker"] = marker });
        settings["LatentPreview:Decoder"] = "auto";
        using (var set = LoadSample("LatentPreview", settings, modelsDirs))
        {
            var ex = await Assert.ThrowsAsync<ExtensionException>(() => GenerateAsync(SampleRequest(), set));
            var inner = Assert.IsType<ExtensionPythonException>(ex.InnerException);
            Assert.Equal(("LatentPreview", "CheckpointError"), (inner.Extension, inner.PythonType));
            Assert.Contains(Path.Combine(vaeApprox, "taesd_decoder.pth") + ": refused to load", inner.Message);
            Assert.False(File.Exists(marker), "the hostile pickle ran");
        }
        Assert.Single(await GenerateAsync(SampleRequest(), null));
    }
}
