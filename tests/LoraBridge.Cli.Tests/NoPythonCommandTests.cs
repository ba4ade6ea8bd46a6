using System.Buffers.Binary;
using System.CommandLine;
using System.Text;

namespace LoraBridge.Cli.Tests;

/// <summary>
/// Commands that do not run a model never boot Python: each runs here on a machine without any usable Python —
/// PATH without python3, no <c>--python</c>, the fixed fallback pointed at an empty folder — and must succeed without
/// even starting discovery (<c>--verbose</c> logs "Python discovery started" the moment anything asks for Python).
/// <c>generate</c> in the same set-up is the control: it needs Python, so it must fail with exit 3.
/// </summary>
public sealed class NoPythonCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-nopy-{Guid.NewGuid():N}")).FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    private const string DiscoveryMarker = "Python discovery started";

    private Dictionary<string, string> NoPythonEnvironment() => new()
    {
        ["PATH"] = Directory.CreateDirectory(Path.Combine(_root, "empty-bin")).FullName,
        ["LORABRIDGE_PYTHON__SYSTEMPYTHON"] = Path.Combine(Directory.CreateDirectory(Path.Combine(_root, "no-python")).FullName, "python3"),
        ["LORABRIDGE_DATADIR"] = Path.Combine(_root, "data"),
    };

    private async Task<(string Stdout, string Stderr)> RunWithoutPythonAsync(params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync([.. args, "--verbose"], _root, NoPythonEnvironment());
        var shown = $"lorabridge {string.Join(' ', args)}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}";
        Assert.True(code == 0, shown);
        Assert.DoesNotContain(DiscoveryMarker, stderr);
        Assert.DoesNotContain("booted", stderr);
        Assert.False(File.Exists(Path.Combine(_root, "data", "python-discovery.json")), "discovery ran: " + shown);
        return (stdout, stderr);
    }

    [Fact]
    public async Task GenerateNeedsPythonSoTheSetUpReallyHasNone()
    {
        var (code, _, stderr) = await CliProcess.RunAsync(["generate", "a cat", "--steps", "1", "--size", "64x64", "--verbose"], _root, NoPythonEnvironment());
        Assert.Equal(3, code);
        Assert.Contains(DiscoveryMarker, stderr);
        Assert.Contains("No usable Python found", stderr);
        Assert.Contains("python3 is not on PATH", stderr);
        Assert.Contains($"not found: {Path.Combine(_root, "no-python", "python3")}", stderr);
    }

    [Fact]
    public async Task PromptPlanRunsWithoutPython()
    {
        var (stdout, _) = await RunWithoutPythonAsync("prompt", "plan", "a [cat:dog:2] <lora:style:0.5>", "--steps", "4", "--json");
        Assert.Contains("style", stdout);
        Assert.Contains("dog", stdout);
    }

    [Fact]
    public async Task LorasListRunsWithoutPython()
    {
        var loras = Directory.CreateDirectory(Path.Combine(_root, "webui", "models", "Lora")).FullName;
        WriteSafetensors(Path.Combine(loras, "tiny_style.safetensors"));

        var (stdout, _) = await RunWithoutPythonAsync("loras", "list", "--json", "--webui-dir", Path.Combine(_root, "webui"));

        Assert.Contains("tiny_style", stdout);
    }

    [Fact]
    public async Task InfoRunsWithoutPython()
    {
        var png = Path.Combine(_root, "made.png");
        File.WriteAllBytes(png, PngWithParameters("a lighthouse\nSteps: 3, Sampler: Euler a, Seed: 42"));

        var (stdout, _) = await RunWithoutPythonAsync("info", png);

        Assert.Contains("Prompt: a lighthouse", stdout);
        Assert.Contains("Seed: 42", stdout);
    }

    [Fact]
    public async Task ExtensionsListRunsWithoutPython()
    {
        var (stdout, _) = await RunWithoutPythonAsync("extensions", "list", "--json");
        Assert.StartsWith("[", stdout.TrimStart());
    }

    [Fact]
    public async Task EveryListingCommandOfTheCatalogRunsWithoutPython()
    {
        // Groups added later are covered as soon as they exist.
        var root = CommandCatalog.Create();
        foreach (var group in new[] { "loras", "extensions" })
        {
            if (root.Subcommands.FirstOrDefault(c => c.Name == group)?.Subcommands.Any(c => c.Name == "list") == true)
                await RunWithoutPythonAsync(group, "list");
        }
    }

    [Fact]
    public async Task EmbeddingsListRunsWithoutPythonOnceTheDemoModelExists()
    {
        if (CommandCatalog.Create().Subcommands.All(c => c.Name != "embeddings")) return;
        // The demo model (its text encoder decides which embeddings fit) is made by Python on first use: make it with
        // the real Python first, then list without any.
        var (made, _, madeErr) = await CliProcess.RunAsync(["embeddings", "list"], _root,
            new Dictionary<string, string> { ["LORABRIDGE_DATADIR"] = Path.Combine(_root, "data") });
        Assert.True(made == 0, madeErr);
        File.Delete(Path.Combine(_root, "data", "python-discovery.json"));

        await RunWithoutPythonAsync("embeddings", "list");
    }

    [Fact]
    public async Task HelpOfEveryCommandRunsWithoutPython()
    {
        var paths = new List<string[]> { Array.Empty<string>() };
        void Walk(Command command, string[] prefix)
        {
            foreach (var sub in command.Subcommands.Where(c => !c.Hidden))
            {
                var path = (string[])[.. prefix, sub.Name];
                paths.Add(path);
                Walk(sub, path);
            }
        }
        Walk(CommandCatalog.Create(), []);
        Assert.Contains(paths, p => p.SequenceEqual(["generate"]));

        foreach (var path in paths)
        {
            var (stdout, _) = await RunWithoutPythonAsync([.. path, "--help"]);
            Assert.Contains("Usage:", stdout);
        }
    }

    private static byte[] PngWithParameters(string parameters)
    {
        // Only the chunk layout matters to the reader (it does not check CRCs); a 1×1 grey image.
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        void Chunk(string type, byte[] data)
        {
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(len, (uint)data.Length);
            ms.Write(len);
            ms.Write(Encoding.ASCII.GetBytes(type));
            ms.Write(data);
            ms.Write(new byte[4]);
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, 1);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), 1);
        ihdr[8] = 8;
        Chunk("IHDR", ihdr);
        Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. Encoding.Latin1.GetBytes(parameters)]);
        Chunk("IEND", []);
        return ms.ToArray();
    }

    private static void WriteSafetensors(string path)
    {
        // One rank-1 LoRA pair: enough for the catalog to list, type and hash it.
        const string header = """{"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight":{"dtype":"F32","shape":[4,1],"data_offsets":[16,32]}}""";
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)h.Length);
        fs.Write(len);
        fs.Write(h);
        fs.Write(new byte[32]);
    }
}
