using System.Text.Json;
using System.Text.RegularExpressions;
using LoraBridge.Engine;
using SkiaSharp;

namespace LoraBridge.Cli.Tests;

/// <summary><c>batch</c> as a user runs it: a Scriban X/Y sweep of LoRA weight × seed on the built-in demo model.</summary>
public sealed class BatchCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    private const int Cell = 64;
    private static readonly string[] Weights = ["0.5", "1"];
    private static readonly string[] Seeds = ["11", "12", "13"];

    // Columns are LoRA weights, rows are seeds.
    private const string SweepTemplate = """
        {{ for cell in xy [0.5, 1] [11, 12, 13] }}
        {{ job {prompt: "a lighthouse " + (lora "demo_style" cell.x), seed: cell.y, x: cell.x, y: cell.y} }}
        {{ end }}
        """;

    private string WriteTemplate(string name, string text)
    {
        var path = Path.Combine(f.Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    private sealed record ManifestLine(int job, int line, string prompt, string negative_prompt, long seed, int steps, string sampler,
        string schedule, double cfg_scale, int width, int height, string file, string? x, string? y);

    [Fact]
    public async Task SweepRunsSixJobsWithOneCheckpointLoadAndWritesManifestAndGrid()
    {
        var template = WriteTemplate("sweep.sbn", SweepTemplate);
        var outDir = f.NewDir("out");
        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["batch", template, "--out", outDir, "--steps", "3", "--size", "64x64", "--negative", "blurry <x>", "--grid", .. f.Common], f.Root, timeoutSeconds: 300);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("6 jobs from sweep.sbn", stdout);
        Assert.Contains("6 jobs, 6 images, 1 checkpoint load\n", stdout.ReplaceLineEndings("\n"));

        var pngs = Directory.GetFiles(outDir, "*.png").Where(p => Regex.IsMatch(Path.GetFileName(p), @"^\d{5}-\d+\.png$")).Order().ToList();
        Assert.Equal(6, pngs.Count);

        var manifest = Assert.Single(Directory.GetFiles(outDir, "batch-*.jsonl"));
        var raw = File.ReadAllLines(manifest);
        Assert.All(raw, l => Assert.Contains("\"a lighthouse <lora:demo_style:", l)); // readable, not \u003C
        var lines = raw.Select(l => JsonSerializer.Deserialize<ManifestLine>(l)!).ToList();
        // Every job's full settings, and the template line of the `job` call (line 2), not of the rendered text.
        Assert.All(lines, l => Assert.Equal((2, "blurry <x>", 3, "Euler a", "Automatic", 7.0, 64, 64),
            (l.line, l.negative_prompt, l.steps, l.sampler, l.schedule, l.cfg_scale, l.width, l.height)));
        Assert.Equal(6, lines.Count);
        Assert.Equal(Enumerable.Range(1, 6), lines.Select(l => l.job));
        Assert.Equal(pngs, lines.Select(l => l.file).Order());
        // xy goes row by row: every weight for seed 11, then seed 12, then 13.
        Assert.Equal(Seeds.SelectMany(s => Weights.Select(w => (w, s))), lines.Select(l => (l.x!, l.y!)));
        foreach (var l in lines)
        {
            Assert.Equal($"a lighthouse <lora:demo_style:{l.x}>", l.prompt);
            Assert.Equal(long.Parse(l.y!), l.seed);
            var info = Infotext.Parse(PngText.Read(l.file)["parameters"]);
            Assert.Equal(l.prompt, info.Prompt);
            Assert.Equal(l.y, info["Seed"]);
            Assert.Equal("3", info["Steps"]);
            Assert.Equal("64x64", info["Size"]);
        }

        var gridLine = Regex.Match(stdout, @"grid: (\S+) \((\d+)x(\d+) cells, (\d+)x(\d+) px\)");
        Assert.True(gridLine.Success, stdout);
        Assert.Equal(("2", "3"), (gridLine.Groups[2].Value, gridLine.Groups[3].Value));
        var gridPath = gridLine.Groups[1].Value;
        Assert.Equal(outDir, Path.GetDirectoryName(gridPath));
        using var grid = Decode(gridPath);
        Assert.Equal((int.Parse(gridLine.Groups[4].Value), int.Parse(gridLine.Groups[5].Value)), (grid.Width, grid.Height));
        // GridComposer's margins: a label row twice the 14 px font high on top; a left margin as wide as the widest row label.
        const int labelHeight = 28;
        int labelWidth = grid.Width - Weights.Length * Cell;
        Assert.Equal(labelHeight + Seeds.Length * Cell, grid.Height);
        Assert.InRange(labelWidth, 14 + 10, 14 + 60); // font size + the width of "11".."13"

        for (int r = 0; r < Seeds.Length; r++)
        {
            Assert.True(HasInk(grid, 0, labelHeight + r * Cell, labelWidth, Cell), $"row label {Seeds[r]} missing");
            for (int c = 0; c < Weights.Length; c++)
            {
                if (r == 0) Assert.True(HasInk(grid, labelWidth + c * Cell, 0, Cell, labelHeight), $"column label {Weights[c]} missing");
                var image = lines.Single(l => l.x == Weights[c] && l.y == Seeds[r]).file;
                using var expected = Decode(image);
                Assert.True(SameRegion(grid, labelWidth + c * Cell, labelHeight + r * Cell, expected), $"cell ({Weights[c]}, {Seeds[r]}) is not {image}");
            }
        }
    }

    [Theory]
    [InlineData("a lighthouse\nstill fine\n{{ x + }}\n", @"bad\.sbn\(3,8\): .*`}}`")]           // parse error, at the `}}` missing its operand
    [InlineData("a lighthouse\n{{ no_such_variable }}\n", @"bad\.sbn\(2,4\): .*no_such_variable")] // render error, at the name
    public async Task TemplateErrorExitsNonZeroWithFileLineAndColumn(string text, string expected)
    {
        var template = WriteTemplate("bad.sbn", text);
        var outDir = f.NewDir("out");
        // A Python that cannot start: the error must come before any attempt to boot it.
        var (code, stdout, stderr) = await CliProcess.RunAsync(["batch", template, "--out", outDir, "--python", "/nonexistent"], f.Root);

        Assert.True(code != 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Matches(expected, stderr);
        Assert.Contains(template, stderr);
        Assert.DoesNotContain("jobs from", stdout);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public async Task DryRunListsTheJobsWithoutStartingPython()
    {
        var template = WriteTemplate("sweep.sbn", SweepTemplate);
        var outDir = f.NewDir("out");
        // Booting /nonexistent would fail the run, so exit 0 proves Python was never started.
        var (code, stdout, stderr) = await CliProcess.RunAsync(["batch", template, "--dry-run", "--out", outDir, "--python", "/nonexistent"], f.Root);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var expected = new List<string> { "6 jobs from sweep.sbn" };
        int n = 1;
        foreach (var s in Seeds)
        {
            foreach (var w in Weights)
            {
                expected.Add($"{n++,4}  line 2  seed {s}  steps 20  Euler a  Automatic  cfg 7  128x128");
                expected.Add($"      prompt: a lighthouse <lora:demo_style:{w}>");
            }
        }
        Assert.Equal(expected, stdout.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public async Task DryRunRefusesWhatARealRunWouldWithoutStartingPython()
    {
        var template = WriteTemplate("typo.sbn", "a lighthouse <lora:demo_style:1>\n\n{{ job {prompt: \"a cat <lora:demo_stlye:1>\", seed: 1} }}\n{{ job {prompt: \"a cat\", seed: 2, steps: 0} }}\n");
        var (code, stdout, stderr) = await CliProcess.RunAsync(
            ["batch", template, "--dry-run", "--negative", "blurry", "--python", "/nonexistent", "--data-dir", f.NewDir("fresh-data")], f.Root);

        Assert.True(code == 1, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        // Still lists every job with its settings, so the user sees what was refused.
        Assert.Contains("   1  line 1  seed random  steps 20  Euler a  Automatic  cfg 7  128x128\n      prompt: a lighthouse <lora:demo_style:1>\n      negative: blurry\n",
            stdout.ReplaceLineEndings("\n"));
        Assert.Contains("   3  line 4  seed 2  steps 0", stdout);
        var errors = stderr.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        // The demo LoRAs count as known on a fresh data folder (a real run creates them); the typo and steps 0 do not.
        Assert.DoesNotContain(errors, e => e.StartsWith("error: job 1 ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("error: job 2 (line 3): ", StringComparison.Ordinal) && e.Contains("demo_stlye", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("error: job 3 (line 4): ", StringComparison.Ordinal) && e.Contains("steps", StringComparison.OrdinalIgnoreCase));
    }

    private static SKBitmap Decode(string path)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path} does not decode");
        var rgba = new SKBitmap(new SKImageInfo(decoded.Width, decoded.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        Assert.True(decoded.CopyTo(rgba, SKColorType.Rgba8888));
        return rgba;
    }

    /// <summary>Any clearly dark pixel in the rectangle (label text is black on white).</summary>
    private static bool HasInk(SKBitmap bitmap, int x0, int y0, int width, int height)
    {
        for (int y = y0; y < y0 + height; y++)
            for (int x = x0; x < x0 + width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c.Red < 128 && c.Green < 128 && c.Blue < 128) return true;
            }
        return false;
    }

    private static bool SameRegion(SKBitmap sheet, int x0, int y0, SKBitmap cell)
    {
        for (int y = 0; y < cell.Height; y++)
            for (int x = 0; x < cell.Width; x++)
                if (sheet.GetPixel(x0 + x, y0 + y) != cell.GetPixel(x, y)) return false;
        return true;
    }

    [Fact]
    public async Task EveryJobIsCheckedBeforeTheFirstRender()
    {
        var template = WriteTemplate("check.sbn", "a cat <lora:demo_style:1>\n{{ job {prompt: \"a dog <lora:demo_styel:1>\", steps: 0} }}\n");
        var outDir = f.NewDir("check");
        var (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--out", outDir, "--size", "64x64", .. f.Common], f.Root, timeoutSeconds: 300);
        Assert.Equal(1, code);
        Assert.Contains("error: job 2 (line 2): steps must be at least 1", stderr);
        Assert.DoesNotContain("job 1", stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir).Any(), "nothing is rendered when a later job is bad");

        template = WriteTemplate("check2.sbn", "a cat\na dog <lora:demo_styel:1>\n");
        (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--out", outDir, "--size", "64x64", .. f.Common], f.Root, timeoutSeconds: 300);
        Assert.Equal(1, code);
        Assert.Contains("error: job 2 (line 2): Lora not found: demo_styel. Closest: demo_style", stderr);
    }

    [Fact]
    public async Task GridOfMixedSizesIsRefusedBeforeRendering()
    {
        var template = WriteTemplate("sizes.sbn", "{{ for c in xy [64, 128] [1] }}\n{{ job {prompt: \"a\", width: c.x, height: 64, x: c.x, y: c.y} }}\n{{ end }}\n");
        var outDir = f.NewDir("sizes");
        var (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--grid", "--out", outDir, "--steps", "2", .. f.Common], f.Root, timeoutSeconds: 300);
        Assert.Equal(1, code);
        Assert.Contains("--grid needs one image size for every cell, the jobs have 64x64, 128x64", stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir).Any());
    }

    [Fact]
    public async Task ABadSizeIsAnErrorNotACrash()
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--size", "512", "--out", f.NewDir("size"), .. f.Common], f.Root);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("error: --size must look like 512x512, got '512'", stderr);
        Assert.DoesNotContain("Unhandled", stderr);
    }
}
