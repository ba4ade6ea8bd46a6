using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using LoraBridge.Cli.Commands;
using LoraBridge.Models;

namespace LoraBridge.Cli.Tests;

/// <summary>
/// Issue 17, as a user (or an attacker) meets it: each test makes its crafted file or command, runs the real CLI and
/// checks the exit code, that the message names the file or option, that no stack trace is printed, and — for the
/// inputs that used to grow without bound — that the run completes under a managed-heap cap
/// (<c>DOTNET_GCHeapHardLimit</c>: beyond it .NET throws instead of growing).
/// </summary>
public sealed class HardeningCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    // 512 MiB: far above what a refused input needs, far below what the bombs asked for (gigabytes).
    private static readonly Dictionary<string, string> HeapCap = new() { ["DOTNET_GCHeapHardLimit"] = "0x20000000" };

    private static void NoStackTrace(string stderr)
    {
        Assert.DoesNotContain("Unhandled", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Traceback", stderr);
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(f.Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    public static TheoryData<string[], string> BadOptions => new()
    {
        { ["generate", "a cat", "--steps", "1000000000"], "--steps must be between 1 and 1000, got 1000000000" },
        { ["generate", "a cat", "--batch-size", "10000"], "--batch-size must be between 1 and 64, got 10000" },
        { ["generate", "a cat", "--batch-count", "0"], "--batch-count must be between 1 and 1000, got 0" },
        { ["generate", "a cat", "--cfg", "nan"], "--cfg must be a finite number between -100 and 100, got NaN" },
        { ["generate", "a cat", "--cfg", "-Infinity"], "--cfg must be a finite number" },
        { ["generate", "a cat", "--torch-threads", "100000"], "--torch-threads must be between 0 and 1024, got 100000" },
        { ["prompt", "plan", "a [b:c:0.5]", "--steps", "1000000000"], "--steps must be between 1 and 1000" },
        { ["generate", "a cat", "--steps", "abc"], "abc" },
        { ["generate", "a cat", "--webui-dir", "/nonexistent/webui"], "--webui-dir /nonexistent/webui: no such folder" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task OutOfRangeOptionsExitTwoNamingTheOption(string[] args, string expected)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync([.. args, "--out", f.NewDir("opt"), "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains(expected, stderr);
        Assert.Equal("", stdout);
        NoStackTrace(stderr);
    }

    [Theory]
    [InlineData("100000x100000", "--size: width must be a multiple of 8 between 8 and 8192, got 100000")]
    [InlineData("512x100", "size must be positive multiples of 8, got 512x100")]
    [InlineData("8192x8192", "--size 8192x8192 with --batch-size 64 needs about 8796.1 GB to decode")]
    public async Task ImpossibleSizesAreRefusedBeforeAnyWork(string size, string expected)
    {
        var outDir = f.NewDir("size");
        var args = new List<string> { "generate", "a cat", "--size", size, "--out", outDir };
        args.AddRange(f.Common);
        if (size == "8192x8192") args.AddRange(["--batch-size", "64"]); // 137 GB: no test machine has it
        var (code, stdout, stderr) = await CliProcess.RunAsync(args, f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains(expected, stderr);
        Assert.Equal("", stdout);
        Assert.DoesNotContain("checkpoint:", stderr); // refused before the model (or the demo model) was touched
        NoStackTrace(stderr);
    }

    [Fact]
    public async Task OutThatIsAFileOrUnwritableIsRefusedBeforeRendering()
    {
        var file = Write("not-a-folder", "keep me");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--size", "64x64", "--steps", "2", "--out", file, .. f.Common], f.Root);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains($"error: --out {file} is a file, not a folder", stderr);
        Assert.DoesNotContain("checkpoint:", stderr);
        Assert.Equal("keep me", File.ReadAllText(file));
        NoStackTrace(stderr);

        (code, _, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--size", "64x64", "--out", "/proc/lorabridge-out", .. f.Common], f.Root);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("error: --out /proc/lorabridge-out cannot be written", stderr);
        NoStackTrace(stderr);

        (code, _, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--python", "/usr/bin/python3", "--data-dir", "/proc/lorabridge-data", "--out", f.NewDir("d")], f.Root);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("error: --data-dir /proc/lorabridge-data cannot be written", stderr);
        NoStackTrace(stderr);
    }

    [Fact]
    public async Task UnknownSamplerIsRefusedBeforeTheModelLoads()
    {
        var (code, _, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--sampler", "Euler b", "--size", "64x64", "--out", f.NewDir("s"), .. f.Common], f.Root);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("error: --sampler 'Euler b' is unknown; expected one of ", stderr);
        Assert.Contains("Euler a", stderr);
        Assert.DoesNotContain("checkpoint:", stderr);
        NoStackTrace(stderr);
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("inf")]
    [InlineData("1e300")]
    public async Task NonFiniteLoraMultipliersAreRefusedWithTheirPosition(string value)
    {
        var outDir = f.NewDir("nan");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", $"a cat <lora:demo_style:{value}>", "--size", "64x64", "--steps", "2", "--out", outDir, .. f.Common], f.Root, timeoutSeconds: 300);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("LoRA 'demo_style' has multiplier", stderr);
        Assert.Contains("(at character 7)", stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir, "*.png").Any());
        NoStackTrace(stderr);
    }

    [Fact]
    public async Task TemplateNumbersThatOverflowAreErrorsWithTheLine()
    {
        // A job line written literally (the form the job helper renders to), and through the helper.
        var template = Write("overflow.sbn", "a cat\n@job {\"prompt\": \"a dog\", \"seed\": 1e30}\n");
        var (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--dry-run", "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("overflow.sbn(2,1): a number in the job settings is out of range", stderr);
        NoStackTrace(stderr);

        template = Write("overflow2.sbn", "a cat\n{{ job {prompt: \"a dog\", steps: 1e12} }}\n");
        (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--dry-run", "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("overflow2.sbn", stderr);
        NoStackTrace(stderr);

        template = Write("range.sbn", "{{ for s in range 0 10000000000 1 }}{{ s }}\n{{ end }}\n");
        (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--dry-run", "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains("at most 100000", stderr);
        NoStackTrace(stderr);
    }

    [Fact]
    public async Task DataRowsAreNotCutAtAThousandAndEndlessDataIsRefused()
    {
        var rows = Write("rows.csv", "n\n" + string.Join("\n", Enumerable.Range(1, 1500)) + "\n");
        var template = Write("rows.sbn", "{{ for r in data }}prompt {{ r.n }}\n{{ end }}\n");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["batch", template, "--data", rows, "--dry-run", "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 0, $"exit {code}\n{stderr}");
        Assert.Contains("1500 jobs from rows.sbn", stdout);
        Assert.Contains("prompt 1500", stdout);

        var zero = Path.Combine(f.Root, "zero.csv");
        File.CreateSymbolicLink(zero, "/dev/zero");
        (code, _, stderr) = await CliProcess.RunAsync(["batch", template, "--data", zero, "--dry-run", "--data-dir", f.DataDir], f.Root, HeapCap);
        Assert.True(code == 2, $"exit {code}\n{stderr}");
        Assert.Contains($"{zero}(1,1): data file is larger than the limit of {64 << 20} bytes", stderr);
        NoStackTrace(stderr);
    }

    private static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        return chunk;
    }

    private static byte[] Png(params byte[][] chunks) =>
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", new byte[13]), .. chunks.SelectMany(c => c), .. Chunk("IEND", [])];

    [Theory]
    [InlineData("zTXt")]
    [InlineData("iTXt")]
    public async Task InfoRefusesCompressedTextBombsUnderAHeapCap(string type)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.SmallestSize))
        {
            var block = new byte[1 << 20];
            for (int i = 0; i < 2048; i++) z.Write(block); // 2 GiB of zeros: 4x the heap cap
        }
        byte[] key = Encoding.Latin1.GetBytes("parameters");
        byte[] data = type == "zTXt" ? [.. key, 0, 0, .. ms.ToArray()] : [.. key, 0, 1, 0, 0, 0, .. ms.ToArray()];
        var png = Path.Combine(f.Root, $"bomb-{type}.png");
        File.WriteAllBytes(png, Png(Chunk(type, data)));

        var (code, stdout, stderr) = await CliProcess.RunAsync(["info", png], f.Root, HeapCap);
        Assert.True(code == 1, $"exit {code}\n{stderr}");
        Assert.Contains($"{png}: {type} chunk 'parameters' at offset 33 inflates to more than the limit", stderr);
        Assert.Equal("", stdout);
        NoStackTrace(stderr);
    }

    [Fact]
    public async Task InfoEscapesTerminalControlsAndParsesHugeParameterLines()
    {
        var text = "a cat \u001b]0;pwned\u0007 \u001b[2J\nSteps: 4, Sampler: Euler\u001b[31m, Seed: 1, " +
                   string.Join(", ", Enumerable.Range(0, 40_000).Select(i => $"K{i}: v")); // ~400 KB: took minutes with the old pattern
        var png = Path.Combine(f.Root, "escapes.png");
        File.WriteAllBytes(png, Png(Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. Encoding.Latin1.GetBytes(text)])));
        var (code, stdout, stderr) = await CliProcess.RunAsync(["info", png], f.Root, HeapCap);
        Assert.True(code == 0, $"exit {code}\n{stderr}");
        Assert.DoesNotContain('\u001b', stdout);
        Assert.DoesNotContain('\u0007', stdout);
        Assert.Contains("Prompt: a cat \\u001b]0;pwned\\u0007 \\u001b[2J", stdout);
        Assert.Contains("Sampler: Euler\\u001b[31m", stdout);
        Assert.Contains("K39999: v", stdout);
    }

    [Fact]
    public async Task LorasListShowsBrokenFilesAndSurvivesLoopsAndFifos()
    {
        var dir = Path.Combine(f.Root, "hostile-loras");
        Directory.CreateDirectory(dir);
        // A readable LoRA (copied from the demo set is not possible without Python; a minimal valid header serves).
        File.WriteAllBytes(Path.Combine(dir, "good.safetensors"), Safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"u8.ToArray()));
        File.WriteAllBytes(Path.Combine(dir, "bad\u001b[31m.safetensors"), Safetensors([.. "{\"__metadata__\":{\"k\":\"\u00ff"u8, 0xFF, .. "\"}}"u8]));
        File.WriteAllBytes(Path.Combine(dir, "surrogate.safetensors"), Safetensors("{\"__metadata__\":{\"k\":\"\\ud800\"}}"u8.ToArray()));
        Directory.CreateSymbolicLink(Path.Combine(dir, "loop"), dir);
        using (var p = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(dir, "pipe.safetensors")])) p.WaitForExit();

        var env = new Dictionary<string, string>(HeapCap) { ["LORABRIDGE_LORADIRS__0"] = dir };
        var (code, stdout, stderr) = await CliProcess.RunAsync(["loras", "list", "--no-hash", "--data-dir", f.DataDir], f.Root, env, timeoutSeconds: 120);
        Assert.True(code == 0, $"exit {code}\n{stderr}");
        Assert.Contains("good", stdout);
        Assert.Contains("bad\\u001b[31m.safetensors: header is not valid UTF-8", stdout);
        Assert.Contains("surrogate.safetensors: header holds a string that is not valid Unicode", stdout);
        Assert.DoesNotContain('\u001b', stdout);
        Assert.DoesNotContain("pipe", stdout);
        NoStackTrace(stderr);

        // doctor's summary of the same catalog
        var catalog = new LoraCatalog(new CatalogOptions { LoraDirs = [dir] });
        var report = new StringWriter();
        ModelFileReport.Write(report, catalog);
        Assert.Contains("loras:    3 files, 2 unreadable", report.ToString());
        Assert.Contains("unreadable: " + Path.Combine(dir, "bad\\u001b[31m.safetensors"), report.ToString());
    }

    private static byte[] Safetensors(byte[] header)
    {
        var data = header.AsSpan().IndexOf("data_offsets"u8) >= 0 ? new byte[8] : [];
        return [.. BitConverter.GetBytes((long)header.Length), .. header, .. data];
    }

    [Fact]
    public async Task StrideZeroLoraIsRefusedNamingTheFile()
    {
        var dir = Path.Combine(f.Root, "bomb-loras");
        Directory.CreateDirectory(dir);
        var bomb = Path.Combine(dir, "bomb.pt");
        // torch.save of an expanded view: a 1-element storage with stride 0 describing 40000 x 40000 floats (6.4 GB).
        var script = $"import torch; torch.save({{'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': torch.zeros(1).expand(40000, 40000), " +
                     $"'lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight': torch.zeros(1).expand(40000, 40000)}}, {Py(bomb)})";
        using (var p = System.Diagnostics.Process.Start("/usr/bin/python3", ["-c", script])) p.WaitForExit();
        Assert.True(new FileInfo(bomb).Length < 4096);

        var env = new Dictionary<string, string> { ["LORABRIDGE_LORADIRS__0"] = dir };
        var outDir = f.NewDir("bomb");
        var (code, _, stderr) = await CliProcess.RunAsync(["generate", "a cat <lora:bomb:1>", "--size", "64x64", "--steps", "2", "--out", outDir, .. f.Common], f.Root, env, timeoutSeconds: 300);
        Assert.True(code == 1, $"exit {code}\n{stderr}");
        Assert.Contains("bomb.pt: refused: tensor of size (40000, 40000) with stride (0, 0) reuses its storage elements", stderr);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFiles(outDir, "*.png").Any());
        NoStackTrace(stderr);
    }

    private static string Py(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";

    [Fact]
    public async Task BatchNeverWritesThroughPlantedLinks()
    {
        var outDir = f.NewDir("links");
        Directory.CreateDirectory(outDir);
        var victim = Write("victim.txt", "untouched");
        // Links at every manifest and grid name the next three minutes could produce.
        var now = DateTime.Now;
        for (int s = 0; s < 180; s++)
        {
            var stamp = now.AddSeconds(s).ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture);
            File.CreateSymbolicLink(Path.Combine(outDir, $"batch-{stamp}.jsonl"), victim);
            File.CreateSymbolicLink(Path.Combine(outDir, $"grid-{stamp}.png"), victim);
        }
        var template = Write("links.sbn", "{{ for c in xy [1] [7] }}\n{{ job {prompt: \"a\", seed: c.y, x: c.x, y: c.y} }}\n{{ end }}\n");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["batch", template, "--grid", "--size", "64x64", "--steps", "2", "--out", outDir, .. f.Common], f.Root, timeoutSeconds: 300);
        Assert.True(code == 0, $"exit {code}\n{stderr}");
        Assert.Equal("untouched", File.ReadAllText(victim));
        var manifest = stdout.Split('\n').Single(l => l.StartsWith("manifest: ", StringComparison.Ordinal))["manifest: ".Length..].Trim();
        Assert.Matches(@"batch-\d{8}-\d{6}-1\.jsonl$", manifest);
        Assert.Null(new FileInfo(manifest).LinkTarget);
        Assert.Contains("\"seed\":7", File.ReadAllText(manifest));
        var grid = stdout.Split('\n').Single(l => l.StartsWith("grid: ", StringComparison.Ordinal))["grid: ".Length..].Split(' ')[0];
        Assert.Null(new FileInfo(grid).LinkTarget);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public async Task SigtermStopsCleanlyWithExitCode143()
    {
        using var cli = CliProcess.Start(["python-loop", "--seconds", "600", "--python", "/usr/bin/python3"], f.Root, waitFor: "python loop running");
        await cli.WaitForLineAsync(180);
        await Task.Delay(300);
        Assert.Equal(0, Kill(cli.Pid, 15));
        var code = await cli.WaitForExitAsync(60);
        Assert.True(code == 143, $"exit {code}\nstdout:\n{cli.Stdout}\nstderr:\n{cli.Stderr}");
        Assert.Matches(@"python loop interrupted after \d+ iterations", cli.Stdout); // the clean path, not a kill
    }
}
