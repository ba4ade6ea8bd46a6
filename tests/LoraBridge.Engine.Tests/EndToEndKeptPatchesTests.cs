using SkiaSharp;

namespace LoraBridge.Engine.Tests;

/// <summary>Networks kept patched between jobs (batch, TUI): what is re-merged, and that images do not change.</summary>
[Collection("end-to-end")]
public sealed class EndToEndKeptPatchesTests(EndToEndFixture f)
{
    private GenerationRequest Request(string prompt) => new()
    {
        Prompt = prompt, Seed = 42, Steps = 4, Width = 64, Height = 64, OutputDir = f.NewOutputDir(),
    };

    private async Task<(byte[] Pixels, PatchStatistics Patches)> RunAsync(string prompt)
    {
        var image = Assert.Single(await f.Workspace.GenerateAsync(Request(prompt), null, CancellationToken.None));
        using var bitmap = SKBitmap.Decode(image.Path)!;
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return (rgba.Bytes, f.Workspace.Engine.LastJobPatches ?? throw new InvalidOperationException("no patch statistics"));
    }

    [Fact]
    public async Task IdenticalJobsPatchNothingAndAChangedWeightPatchesOnlyThatLorasLayers()
    {
        const string both = "a lighthouse <lora:demo_style:1> <lora:demo_subject:1>";
        const string changed = "a lighthouse <lora:demo_style:0.5> <lora:demo_subject:1>";
        var engine = f.Workspace.Engine;
        // Fresh-process references: restored model, nothing kept.
        var freshBoth = await RunAsync(both);
        var freshChanged = await RunAsync(changed);
        var styleAlone = await RunAsync("a lighthouse <lora:demo_style:1>");
        Assert.True(styleAlone.Patches.LayersPatched > 0);
        try
        {
            engine.KeepNetworksBetweenJobs = true;
            var job1 = await RunAsync(both);
            var job2 = await RunAsync(both);
            var job3 = await RunAsync(both);
            Assert.True(job1.Patches.LayersPatched > 0);
            Assert.Equal(0, job2.Patches.LayersPatched);
            Assert.Equal(0, job3.Patches.LayersPatched);
            Assert.Equal(freshBoth.Pixels, job1.Pixels);
            Assert.Equal(freshBoth.Pixels, job2.Pixels);
            Assert.Equal(freshBoth.Pixels, job3.Pixels);

            var job4 = await RunAsync(changed);
            // Every layer demo_style reaches (text encoder and UNet), and no other.
            Assert.Equal(styleAlone.Patches.LayersPatched, job4.Patches.LayersPatched);
            Assert.Equal(freshChanged.Pixels, job4.Pixels);
        }
        finally
        {
            engine.KeepNetworksBetweenJobs = false;
            await engine.RestoreNetworksAsync();
        }
        Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
    }

    [Fact]
    public async Task AFailedJobStillRestoresTheWeights()
    {
        var engine = f.Workspace.Engine;
        try
        {
            engine.KeepNetworksBetweenJobs = true;
            await RunAsync("a lighthouse <lora:demo_style:1>");
            Assert.NotEqual(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
            using var cts = new CancellationTokenSource();
            var progress = new Progress<GenerationProgress>(p => { if (p.Step >= 1) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => f.Workspace.GenerateAsync(Request("a lighthouse <lora:demo_style:0.7>"), progress, cts.Token));
            Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
        }
        finally
        {
            engine.KeepNetworksBetweenJobs = false;
            await engine.RestoreNetworksAsync();
        }
    }
}
