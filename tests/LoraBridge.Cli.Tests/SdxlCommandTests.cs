using System.Text.Json;

namespace LoraBridge.Cli.Tests;

/// <summary><c>generate</c> on the built-in SDXL demo model, and the precision option, as a user runs them.</summary>
public sealed class SdxlCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    [Fact]
    public async Task GenerateOnTheSdxlDemoWritesA128PngWithSdxlInfotextAndRepeatsItBytForByte()
    {
        var outDir = f.NewDir("out");
        string[] args = ["generate", "a lighthouse <lora:demo_style_xl:0.8>", "--checkpoint", "lorabridge-demo-xl", "--steps", "4", "--seed", "7",
            "--out", outDir, .. f.Common];
        var (code, stdout, stderr) = await CliProcess.RunAsync(args, f.Root);
        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("lorabridge-demo-xl.safetensors (built-in demo model)", stderr);
        Assert.DoesNotContain("warning:", stderr);
        var png = Path.Combine(outDir, "00000-7.png");
        Assert.Contains(png, stdout);

        var (again, _, againErr) = await CliProcess.RunAsync(args, f.Root);
        Assert.True(again == 0, againErr);
        Assert.Equal(File.ReadAllBytes(png), File.ReadAllBytes(Path.Combine(outDir, "00001-7.png")));

        var (infoCode, json, infoErr) = await CliProcess.RunAsync(["info", png, "--json"], f.Root);
        Assert.True(infoCode == 0, infoErr);
        using var doc = JsonDocument.Parse(json);
        var p = doc.RootElement.GetProperty("parameters");
        Assert.Equal("128x128", p.GetProperty("Size").GetString()); // the demo models' default size
        Assert.Equal("lorabridge-demo-xl", p.GetProperty("Model").GetString());
        Assert.Equal("7", p.GetProperty("Seed").GetString());
        Assert.Equal("4", p.GetProperty("Steps").GetString());
        Assert.Matches("^[0-9a-f]{10}$", p.GetProperty("Model hash").GetString());
        Assert.Matches("^demo_style_xl: [0-9a-f]{12}$", p.GetProperty("Lora hashes").GetString());
    }

    [Fact]
    public async Task LorasOfTheOtherFamilyWarnNamingBothFamiliesAndGenerate()
    {
        // Each demo model is made on its first use, with its LoRAs: the SDXL one first, so demo_style_xl exists.
        var outDir = f.NewDir("out");
        var (first, _, firstErr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse", "--checkpoint", "lorabridge-demo-xl", "--steps", "1", "--seed", "1", "--out", outDir, .. f.Common], f.Root);
        Assert.True(first == 0, firstErr);

        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse <lora:demo_style_xl:1>", "--steps", "2", "--seed", "2", "--size", "64x64", "--out", outDir, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("warning: LoRA 'demo_style_xl' was made for SDXL but the checkpoint is SD1", stderr);
        Assert.True(File.Exists(Path.Combine(outDir, "00001-2.png")));

        // Now demo_style (SD1) exists too; on the SDXL demo, with --precision full (fp32, as on any CPU run).
        (code, stdout, stderr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse <lora:demo_style:1>", "--checkpoint", "lorabridge-demo-xl", "--steps", "2", "--seed", "3",
             "--precision", "full", "--out", outDir, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("warning: LoRA 'demo_style' was made for SD1 but the checkpoint is SDXL", stderr);
        Assert.True(File.Exists(Path.Combine(outDir, "00002-3.png")));
    }

    [Fact]
    public async Task AnUnknownPrecisionIsRefusedBeforeAnyWork()
    {
        var outDir = f.NewDir("out");
        var (code, _, stderr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse", "--precision", "half", "--out", outDir, .. f.Common], f.Root);
        Assert.Equal(2, code);
        Assert.Contains("error: --precision must be full or autocast, got 'half'", stderr);
        Assert.False(Directory.Exists(outDir));

        var env = new Dictionary<string, string> { ["LORABRIDGE_PRECISION"] = "fp8" };
        var (envCode, _, envErr) = await CliProcess.RunAsync(["generate", "a lighthouse", "--out", outDir, .. f.Common], f.Root, env);
        Assert.Equal(2, envCode);
        Assert.Contains("LoraBridge:Precision must be full or autocast", envErr);
    }
    [Fact]
    public async Task DoctorNamesTheSdxlDemoAndTheFamilyOfAConfiguredCheckpoint()
    {
        var env = new Dictionary<string, string> { ["LORABRIDGE_CHECKPOINT"] = "lorabridge-demo-xl" };
        var (code, stdout, stderr) = await CliProcess.RunAsync(["doctor", .. f.Common], f.Root, env);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("model:    built-in demo model lorabridge-demo-xl (", stdout);

        // A refiner-shaped header (no weights needed): the family line says what it is, and it is listed as a problem.
        var refiner = Path.Combine(f.Root, "refiner.safetensors");
        var header = System.Text.Encoding.UTF8.GetBytes(
            "{\"conditioner.embedders.0.model.ln_final.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}");
        File.WriteAllBytes(refiner, [.. BitConverter.GetBytes((long)header.Length), .. header, .. new byte[8]]);
        env["LORABRIDGE_CHECKPOINT"] = refiner;
        (_, stdout, stderr) = await CliProcess.RunAsync(["doctor", .. f.Common], f.Root, env);
        Assert.Contains("family:   SDXL refiner (conditioner.embedders.0 is OpenCLIP, no CLIP-L), not supported", stdout);
        Assert.Contains($"  - {refiner}: SDXL refiner", stdout);
    }
}
