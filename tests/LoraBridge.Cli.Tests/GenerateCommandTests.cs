using System.Text.Json;

namespace LoraBridge.Cli.Tests;

/// <summary>A temporary folder with one LoraBridge data folder, so the demo model is created once per test class.</summary>
public sealed class CliDataFixture : IDisposable
{
    public string Root { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-cli-gen-{Guid.NewGuid():N}")).FullName;
    public string DataDir => Path.Combine(Root, "data");

    /// <summary>Options every generating run gets: the tests' Python (TestPython.Executable: Debian's, with torch, unless overridden), a small torch pool, the class's data folder.</summary>
    public string[] Common => ["--python", TestPython.Executable, "--torch-threads", "2", "--data-dir", DataDir];

    public string NewDir(string tag) => Path.Combine(Root, $"{tag}-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary><c>generate</c> and <c>info</c> as a user runs them: child processes on the built-in demo model.</summary>
public sealed class GenerateCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    [Fact]
    public async Task GenerateWritesAPngWhoseInfotextInfoReadsBack()
    {
        var outDir = f.NewDir("out");
        const string prompt = "a lighthouse, stormy sea <lora:demo_style:0.8>";
        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["generate", prompt, "--negative", "blurry, low quality", "--seed", "5", "--steps", "3", "--size", "64x64", "--out", outDir, .. f.Common], f.Root);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var png = Path.Combine(outDir, "00000-5.png");
        Assert.Contains(png, stdout);
        Assert.True(File.Exists(png));
        Assert.Contains("1 job, 1 image, 1 checkpoint load", stdout);
        Assert.Contains("(built-in demo model)", stderr);
        Assert.Matches(@"step 3/3 \(", stderr); // plain progress lines when stderr is not a terminal

        var (infoCode, json, infoErr) = await CliProcess.RunAsync(["info", png, "--json"], f.Root);
        Assert.True(infoCode == 0, $"exit {infoCode}\n{json}\n{infoErr}");
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(prompt, root.GetProperty("prompt").GetString());
        Assert.Equal("blurry, low quality", root.GetProperty("negative_prompt").GetString());
        var p = root.GetProperty("parameters");
        Assert.Equal("3", p.GetProperty("Steps").GetString());
        Assert.Equal("Euler a", p.GetProperty("Sampler").GetString());
        Assert.Equal("5", p.GetProperty("Seed").GetString());
        Assert.Equal("64x64", p.GetProperty("Size").GetString());
        Assert.Equal("lorabridge-demo", p.GetProperty("Model").GetString());
        Assert.Matches("^[0-9a-f]{10}$", p.GetProperty("Model hash").GetString());
        Assert.Matches("^demo_style: [0-9a-f]{12}$", p.GetProperty("Lora hashes").GetString());

        var (plainCode, plain, _) = await CliProcess.RunAsync(["info", png], f.Root);
        Assert.Equal(0, plainCode);
        Assert.Contains($"Prompt: {prompt}\nNegative prompt: blurry, low quality\nSteps: 3\nSampler: Euler a\n", plain.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task VerboseEndsWithATimingsLineForEveryStartUpPhase()
    {
        // The start-up benchmark reads this line; a phase missing or not a number would silently drop out of its table.
        var outDir = f.NewDir("timed");
        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse", "--seed", "2", "--steps", "1", "--size", "64x64", "--out", outDir, "--verbose", .. f.Common], f.Root);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("1 job, 1 image, 1 checkpoint load", stdout); // the early load is the job's one load
        var line = stderr.Split('\n').Last(l => l.StartsWith("timings:", StringComparison.Ordinal)).Trim();
        var m = System.Text.RegularExpressions.Regex.Match(line,
            @"^timings: start_to_main=\d+ host_ready=(\d+) discovery=\d+ boot=(\d+) bridge_import=\d+ demo_check=(\d+|-) " +
            @"model_load=\d+ encode=\d+ first_step=\d+ decode=\d+ shutdown=\d+ main_to_exit=(\d+) cache=(used|probed)$");
        Assert.True(m.Success, line);
        // Phases are parts of the run measured from main: none can exceed the whole.
        Assert.True(int.Parse(m.Groups[4].Value) >= int.Parse(m.Groups[1].Value) + int.Parse(m.Groups[2].Value), line);
    }

    [Fact]
    public async Task UnknownLoraExitsOneNamingCloseMatchesAndWritesNothing()
    {
        var outDir = f.NewDir("out");
        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["generate", "a lighthouse <lora:demo_styel:1>", "--seed", "1", "--steps", "2", "--size", "64x64", "--out", outDir, .. f.Common], f.Root);

        Assert.True(code == 1, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("error: Lora not found: demo_styel. Closest: demo_style", stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any());
    }

    [Fact]
    public async Task InfoOnANonPngExitsOneNamingTheFile()
    {
        var text = Path.Combine(f.Root, "notes.png");
        File.WriteAllText(text, "not an image\n");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["info", text], f.Root);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains($"error: {text}: not a PNG file (bad signature)", stderr);

        var missing = Path.Combine(f.Root, "missing.png");
        (code, _, stderr) = await CliProcess.RunAsync(["info", missing], f.Root);
        Assert.Equal(1, code);
        Assert.Contains(missing, stderr);
    }

    [Fact]
    public async Task TuiWithoutATerminalExitsOneAndSaysWhy()
    {
        // The test runner's stdio are pipes, never a terminal.
        var (code, stdout, stderr) = await CliProcess.RunAsync(["tui", "--data-dir", Path.Combine(f.Root, "tui-data")], f.Root);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("terminal", stderr);
        Assert.False(Directory.Exists(Path.Combine(f.Root, "tui-data", "demo")));
    }

    [Fact]
    public async Task ExtensionsListShowsLoadedOnesAndCompileErrorsWithTheirPosition()
    {
        var dir = Directory.CreateDirectory(Path.Combine(f.Root, "ext-" + Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(dir, "Good.cs"), "public sealed class Good : ILoraBridgeExtension { public string Name => \"Good\"; public string Description => \"does nothing\"; }\n");
        File.WriteAllText(Path.Combine(dir, "Bad.cs"), "public sealed class Bad : ILoraBridgeExtension {\n  public string Name => 42;\n}\n");
        var (code, stdout, _) = await CliProcess.RunAsync(["extensions", "list", "--dir", dir, "--data-dir", Path.Combine(dir, "data")], f.Root);
        Assert.Equal(1, code);
        Assert.Contains("Good", stdout);
        Assert.Contains($"{Path.Combine(dir, "Bad.cs")}(2,", stdout);
        Assert.Contains("1 of 2 loaded", stdout);
    }

    [Fact]
    public async Task ExtensionsGetTheWebuiAndDataModelsFoldersAsTheirModelsDirs()
    {
        var dir = Directory.CreateDirectory(Path.Combine(f.Root, "ext-" + Guid.NewGuid().ToString("N"))).FullName;
        var webui = Directory.CreateDirectory(Path.Combine(dir, "webui")).FullName;
        // Initialize runs at load time; Description shows what it got.
        File.WriteAllText(Path.Combine(dir, "Models.cs"), """
            public sealed class Models : ILoraBridgeExtension
            {
                private string _seen = "?";
                public string Name => "Models";
                public string Description => "models=" + _seen;
                public void Initialize(IExtensionHost host) => _seen = string.Join("|", host.ModelsDirs);
            }
            """);
        var data = Path.Combine(dir, "data");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["extensions", "list", "--dir", dir, "--data-dir", data, "--webui-dir", webui], f.Root);
        Assert.True(code == 0, stderr);
        Assert.Contains($"models={Path.Combine(webui, "models")}|{Path.Combine(data, "models")}", stdout);
    }
}
