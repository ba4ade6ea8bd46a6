using System.Text.Json;
using LoraBridge.Engine;

namespace LoraBridge.Extensions.Tests;

public sealed class SampleExtensionTests : IDisposable
{
    private static readonly string Samples = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../extensions"));
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-ext-samples").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void EverySampleCompilesAndLoads()
    {
        using var set = ExtensionLoader.Load([Samples], new TestHost(_dir));
        Assert.NotEmpty(set.Units);
        Assert.All(set.Units, u => Assert.True(u.Status == ExtensionStatus.Loaded,
            $"{u.Path}: {u.Status} {u.LoadError} {string.Join(Environment.NewLine, u.Errors)}"));
        Assert.Contains(set.Extensions, e => e.Name == "PromptSuffix");
        Assert.Contains(set.Extensions, e => e.Name == "StepLogger");
        Assert.Contains(set.Extensions, e => e.Name == "CfgRescale");
        Assert.Contains(set.Extensions, e => e.Name == "LatentPreview");
    }

    [Fact]
    public async Task SamplesDoNothingUntilConfigured()
    {
        using var set = ExtensionLoader.Load([Samples], new TestHost(_dir));
        var request = new GenerationRequest { Prompt = "a cat", OutputDir = _dir };
        Assert.Same(request, await set.BeforeJobAsync(request, default));
        await set.AfterStepAsync(new GenerationProgress(0, 1, 1, 2, 1, TimeSpan.Zero), default);
        // Unconfigured CfgRescale and LatentPreview never reach Python (this host has none: a call would throw).
        await set.AfterCfgAsync(new CfgStep(new LoraBridge.Python.TensorHandle(1), 1, 2, 1.0), default);
        var image = new ImageToSave(new byte[12], 2, 2, new Infotext("a cat", "", [new("Steps", "2")]), 1, 0);
        await set.BeforeImageSavedAsync(image, default);
        Assert.Equal(["Steps"], image.Parameters.Keys);
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("a cat", "a cat, watercolor")]
    [InlineData("a cat, ", "a cat, watercolor")]
    [InlineData("", "watercolor")]
    public async Task PromptSuffixAppendsTheConfiguredStyle(string prompt, string expected)
    {
        using var set = ExtensionLoader.Load([Samples], new TestHost(_dir, new() { ["PromptSuffix:Suffix"] = " watercolor " }));
        var result = await set.BeforeJobAsync(new GenerationRequest { Prompt = prompt, OutputDir = _dir }, default);
        Assert.Equal(expected, result.Prompt);
    }

    [Fact]
    public async Task StepLoggerWritesAJsonLinePerStepAndImage()
    {
        using var set = ExtensionLoader.Load([Samples], new TestHost(_dir, new() { ["StepLogger:Path"] = "logs/steps.jsonl" }));
        await set.AfterStepAsync(new GenerationProgress(0, 2, 1, 20, 4.5, TimeSpan.FromSeconds(9)), default);
        await set.AfterStepAsync(new GenerationProgress(1, 2, 20, 20, 4.25, TimeSpan.Zero), default);
        await set.AfterImageAsync(new GeneratedImage("/out/00000-5.png", 5, "a cat"), default);

        var lines = File.ReadAllLines(Path.Combine(_dir, "logs", "steps.jsonl"));
        Assert.Equal(3, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal(0, first.RootElement.GetProperty("batch").GetInt32());
        Assert.Equal(1, first.RootElement.GetProperty("step").GetInt32());
        Assert.Equal(20, first.RootElement.GetProperty("totalSteps").GetInt32());
        Assert.Equal(4.5, first.RootElement.GetProperty("stepsPerSecond").GetDouble());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal(1, second.RootElement.GetProperty("batch").GetInt32());
        using var image = JsonDocument.Parse(lines[2]);
        Assert.Equal("/out/00000-5.png", image.RootElement.GetProperty("image").GetString());
        Assert.Equal(5, image.RootElement.GetProperty("seed").GetInt64());
    }
}
