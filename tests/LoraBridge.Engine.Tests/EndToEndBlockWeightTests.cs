using SkiaSharp;

namespace LoraBridge.Engine.Tests;

/// <summary>LoRA block weights (<c>lbw=</c>) through the real embedded Python on the demo model.</summary>
[Collection("end-to-end")]
public sealed class EndToEndBlockWeightTests(EndToEndFixture f)
{
    private GenerationRequest Request(string prompt) => new()
    {
        Prompt = prompt, Seed = 42, Steps = 4, Width = 64, Height = 64, OutputDir = f.NewOutputDir(),
    };

    private async Task<byte[]> PixelsAsync(string prompt)
    {
        var image = Assert.Single(await f.Workspace.GenerateAsync(Request(prompt), null, CancellationToken.None));
        using var bitmap = SKBitmap.Decode(image.Path)!;
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return rgba.Bytes;
    }

    [Fact]
    public async Task BlockWeightsChangeTheImageAndAllZeroBlocksEqualNoLora()
    {
        var none = await PixelsAsync("a lighthouse");
        var full = await PixelsAsync("a lighthouse <lora:demo_style:1>");
        // 26 zeros: every block (text encoder included) at 0, so a LoRA that only patches blocks does nothing.
        var zero = await PixelsAsync("a lighthouse <lora:demo_style:1:lbw=" + string.Join(',', Enumerable.Repeat("0", 26)) + ">");
        var half = await PixelsAsync("a lighthouse <lora:demo_style:1:lbw=" + string.Join(',', Enumerable.Repeat("0.5", 26)) + ">");
        var again = await PixelsAsync("a lighthouse <lora:demo_style:1>");

        Assert.Equal(none, zero);
        Assert.NotEqual(full, half);
        Assert.NotEqual(none, half);
        // The block weights of one job do not leak into the next one (table replaced, conditionings dropped).
        Assert.Equal(full, again);
        Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
    }

    [Fact]
    public async Task UnknownPresetIsAnErrorWithItsPosition()
    {
        var ex = await Assert.ThrowsAsync<PromptPlanException>(() => f.Workspace.GenerateAsync(Request("a lighthouse <lora:demo_style:1:lbw=NOPE>"), null, CancellationToken.None));
        Assert.Contains("unknown block-weight preset 'NOPE'", ex.Message);
        Assert.Contains("at character 33", ex.Message); // 1-based offset of "lbw=NOPE"
    }
}
