using System.Text.Json;

namespace LoraBridge.Cli.Tests;

/// <summary><c>generate --hires</c>, <c>img2img</c>, <c>upscalers list</c> and <c>upscale</c> as a user runs them (demo model).</summary>
public sealed class Img2ImgCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    private static JsonElement Parameters(string json) => JsonDocument.Parse(json).RootElement.GetProperty("parameters").Clone();

    private static (int W, int H) PngSize(string path)
    {
        var b = File.ReadAllBytes(path);
        return ((b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19], (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23]);
    }

    [Fact]
    public async Task HiresThenImg2ImgThenUpscaleAndInfoReadsThemBack()
    {
        var outDir = f.NewDir("hires");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", "a lighthouse", "--seed", "5", "--steps", "3", "--size", "64x64",
            "--hires", "--hr-steps", "2", "--denoise", "0.6", "--out", outDir, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var png = Path.Combine(outDir, "00000-5.png");
        Assert.Equal((128, 128), PngSize(png));
        var (_, json, _) = await CliProcess.RunAsync(["info", png, "--json"], f.Root);
        var p = Parameters(json);
        Assert.Equal("0.6", p.GetProperty("Denoising strength").GetString());
        Assert.Equal("2", p.GetProperty("Hires upscale").GetString());
        Assert.Equal("2", p.GetProperty("Hires steps").GetString());
        Assert.Equal("Latent", p.GetProperty("Hires upscaler").GetString());

        var i2iDir = f.NewDir("i2i");
        (code, stdout, stderr) = await CliProcess.RunAsync(["img2img", png, "a red lighthouse", "--seed", "9", "--steps", "3", "--size", "64x64",
            "--denoise", "0.5", "--resize-mode", "Crop and resize", "--out", i2iDir, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var i2i = Path.Combine(i2iDir, "00000-9.png");
        Assert.Equal((64, 64), PngSize(i2i));
        (_, json, _) = await CliProcess.RunAsync(["info", i2i, "--json"], f.Root);
        Assert.Equal("0.5", Parameters(json).GetProperty("Denoising strength").GetString());

        // An ESRGAN file in the data folder's models/ESRGAN.
        var esrgan = Path.Combine(f.DataDir, "models", "ESRGAN");
        Directory.CreateDirectory(esrgan);
        var weights = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/conformance/upscalers/weights/old_x2_nf8_nb1.pth"));
        if (!File.Exists(weights)) return; // shared material absent: the rest needs an upscaler file
        File.Copy(weights, Path.Combine(esrgan, "2x-Tiny.pth"), overwrite: true);
        (code, stdout, _) = await CliProcess.RunAsync(["upscalers", "list", "--json", .. f.Common], f.Root);
        Assert.Equal(0, code);
        Assert.Contains("\"name\":\"2x-Tiny\"", stdout);
        var exDir = f.NewDir("extras");
        (code, stdout, stderr) = await CliProcess.RunAsync(["upscale", i2i, "--upscaler", "2x-Tiny", "--scale", "2", "-o", exDir, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal((128, 128), PngSize(Path.Combine(exDir, "00000.png")));
        (_, json, _) = await CliProcess.RunAsync(["info", Path.Combine(exDir, "00000.png"), "--json"], f.Root);
        Assert.Equal("0.5", Parameters(json).GetProperty("Denoising strength").GetString()); // the source's parameters are kept

        (code, _, stderr) = await CliProcess.RunAsync(["upscale", i2i, "--upscaler", "4x-Missing", "-o", exDir, .. f.Common], f.Root);
        Assert.Equal(1, code);
        Assert.Contains("no upscaler named '4x-Missing'", stderr);
    }

    [Fact]
    public async Task Img2ImgWithAMissingPictureExitsOneAndWritesNothing()
    {
        var outDir = f.NewDir("missing");
        var (code, _, stderr) = await CliProcess.RunAsync(["img2img", Path.Combine(f.Root, "nope.png"), "a lighthouse", "--out", outDir, .. f.Common], f.Root);
        Assert.Equal(1, code);
        Assert.Contains("nope.png", stderr);
        Assert.False(Directory.Exists(outDir));
    }
}
