namespace LoraBridge.Cli.Tests;

/// <summary><c>generate</c> and <c>batch</c> load extensions the same way, through the compiled-extension cache.</summary>
public sealed class ExtensionCommandTests : IDisposable
{
    private static readonly string Samples = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../extensions"));
    private readonly string _root = Directory.CreateTempSubdirectory("lorabridge-cli-ext").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task GenerateAndBatchRunTheSampleHooksAndTheSecondCommandUsesTheCache()
    {
        var data = Path.Combine(_root, "data");
        string[] common = ["--python", TestPython.Executable, "--torch-threads", "2", "--data-dir", data, "--steps", "2", "--size", "64x64", "--seed", "4"];
        var env = new Dictionary<string, string>
        {
            ["LORABRIDGE_EXTENSIONS__DIRS__0"] = Samples,
            ["LORABRIDGE_EXTENSIONS__CFGRESCALE__MULTIPLIER"] = "0.5",
        };
        var genOut = Path.Combine(_root, "gen");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", "a lighthouse", "--out", genOut, .. common], _root, env);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var cache = Path.Combine(data, "extension-cache");
        var compiled = Directory.GetFiles(cache, "*.dll").ToDictionary(p => p, File.GetLastWriteTimeUtc);
        Assert.Equal(4, compiled.Count); // PromptSuffix, StepLogger, CfgRescale, LatentPreview

        var template = Path.Combine(_root, "one.sbn");
        File.WriteAllText(template, "a lighthouse\n");
        var batchOut = Path.Combine(_root, "batch");
        (code, stdout, stderr) = await CliProcess.RunAsync(["batch", template, "--out", batchOut, .. common], _root, env);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(compiled, Directory.GetFiles(cache, "*.dll").ToDictionary(p => p, File.GetLastWriteTimeUtc));

        foreach (var png in new[] { Path.Combine(genOut, "00000-4.png"), Directory.GetFiles(batchOut, "*.png").Single() })
        {
            var (infoCode, info, infoErr) = await CliProcess.RunAsync(["info", png], _root);
            Assert.True(infoCode == 0, infoErr);
            Assert.Contains("CFG Rescale phi: 0.5", info);
        }
    }
}
