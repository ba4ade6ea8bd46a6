using SkiaSharp;

namespace LoraBridge.Engine.Tests;

/// <summary>img2img and hires fix through the real embedded Python on the demo model.</summary>
[Collection("end-to-end")]
public sealed class EndToEndImg2ImgTests(EndToEndFixture f)
{
    private const int Size = 64;

    private GenerationRequest Request(string prompt, long seed = 42, string? outputDir = null) => new()
    {
        Prompt = prompt,
        Seed = seed,
        Steps = 4,
        Width = Size,
        Height = Size,
        OutputDir = outputDir ?? f.NewOutputDir(),
    };

    private async Task<GeneratedImage> OneAsync(GenerationRequest request)
    {
        var image = Assert.Single(await f.Workspace.GenerateAsync(request, null, CancellationToken.None));
        Assert.True(File.Exists(image.Path));
        return image;
    }

    private static (int W, int H, byte[] Rgba) Pixels(string png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException($"{png} does not decode");
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(bitmap.CopyTo(rgba, SKColorType.Rgba8888));
        return (bitmap.Width, bitmap.Height, rgba.Bytes);
    }

    private static double MeanAbs(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    private string Picture(string name, Func<int, int, SKColor> colour)
    {
        var path = Path.Combine(f.TempDir, name);
        using var bitmap = new SKBitmap(Size, Size);
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
                bitmap.SetPixel(x, y, colour(x, y));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public async Task HiresWritesTwiceTheSizeWithA1111sInfotextAndSameSeedSameBytes()
    {
        var request = Request("a lighthouse <lora:demo_style:0.8>") with
        {
            Hires = new HiresSettings { Steps = 2, DenoisingStrength = 0.55, Sampler = "DPM++ 2M" },
        };
        var first = await OneAsync(request);
        var again = await OneAsync(request with { OutputDir = Path.GetDirectoryName(first.Path)! });
        var (w, h, _) = Pixels(first.Path);
        Assert.Equal((2 * Size, 2 * Size), (w, h));
        Assert.Equal(File.ReadAllBytes(first.Path), File.ReadAllBytes(again.Path));
        var info = Infotext.Parse(first.Infotext).Parameters.Select(p => p.Key + ": " + p.Value).ToList();
        // A1111's order: "Denoising strength" after "Model", the hires entries after the sampler's, before "Lora hashes".
        var keys = Infotext.Parse(first.Infotext).Parameters.Select(p => p.Key).ToList();
        Assert.True(keys.IndexOf("Model") < keys.IndexOf("Denoising strength"));
        Assert.Equal(["Hires sampler", "Hires schedule type", "Hires upscale", "Hires steps", "Hires upscaler", "Lora hashes"],
            keys.SkipWhile(k => k != "Hires sampler").TakeWhile(k => k != "Version"));
        Assert.Contains("Denoising strength: 0.55", info);
        Assert.Contains("Hires upscale: 2", info);
        Assert.Contains("Hires upscaler: Latent", info);
        Assert.Contains("Size: 64x64", info); // A1111 writes the first pass's size
    }

    [Fact]
    public async Task HiresWithNearestExactAndAResizeBoxGivesTheBoxSize()
    {
        var image = await OneAsync(Request("a lighthouse") with
        {
            Hires = new HiresSettings { Upscaler = "Latent (nearest-exact)", ResizeX = 96, ResizeY = 80, Steps = 1 },
        });
        var (w, h, _) = Pixels(image.Path);
        Assert.Equal((96, 80), (w, h));
        Assert.Contains("Hires resize: 96x80", image.Infotext);
    }

    [Fact]
    public async Task Img2ImgAtDenoiseZeroIsTheVaeRoundTripAndAtOneIgnoresThePicture()
    {
        var red = Picture("red.png", (x, y) => new SKColor((byte)(200 + x / 2), 20, (byte)(y * 2)));
        var blue = Picture("blue.png", (x, y) => new SKColor(10, (byte)(x * 3), 230));
        GenerationRequest I2I(string path, double strength, bool fix = false) => Request("a lighthouse", 7) with
        {
            Img2Img = new Img2ImgSettings { InitImage = path, DenoisingStrength = strength, FixSteps = fix },
        };

        var roundTrip = await OneAsync(I2I(red, 0.0, fix: true));
        var (_, _, original) = Pixels(red);
        var (_, _, kept) = Pixels(roundTrip.Path);
        // The VAE round trip of a random demo VAE is not the picture, but denoise 0 keeps exactly it: same file twice.
        Assert.Equal(File.ReadAllBytes(roundTrip.Path), File.ReadAllBytes((await OneAsync(I2I(red, 0.0, fix: true))).Path));
        Assert.Contains("Denoising strength: 0", roundTrip.Infotext);

        var fullRed = Pixels((await OneAsync(I2I(red, 1.0))).Path).Rgba;
        var fullBlue = Pixels((await OneAsync(I2I(blue, 1.0))).Path).Rgba;
        var lowRed = Pixels((await OneAsync(I2I(red, 0.2))).Path).Rgba;
        var lowBlue = Pixels((await OneAsync(I2I(blue, 0.2))).Path).Rgba;
        // At strength 1 the two pictures' results are much closer to each other than at 0.2.
        Assert.True(MeanAbs(fullRed, fullBlue) < MeanAbs(lowRed, lowBlue) / 2,
            $"strength 1: {MeanAbs(fullRed, fullBlue):0.##}, strength 0.2: {MeanAbs(lowRed, lowBlue):0.##}");
        Assert.True(MeanAbs(kept, lowRed) < MeanAbs(kept, fullRed));
        Assert.NotEmpty(original);
    }

    [Fact]
    public async Task BadImg2ImgSettingsAreErrorsBeforeAnyWork()
    {
        var missing = Request("a lighthouse") with { Img2Img = new Img2ImgSettings { InitImage = Path.Combine(f.TempDir, "nope.png") } };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => f.Workspace.GenerateAsync(missing, null, CancellationToken.None));
        Assert.Contains("nope.png", ex.Message);
        var strength = Request("a lighthouse") with { Hires = new HiresSettings { DenoisingStrength = 1.5 } };
        Assert.Contains("1.5", (await Assert.ThrowsAsync<ArgumentException>(() => f.Workspace.GenerateAsync(strength, null, CancellationToken.None))).Message);
        Assert.False(Directory.Exists(missing.OutputDir));
        Assert.Equal(f.BaseDigest, await f.Bridge.GetWeightsDigestAsync());
    }
}
