using System.Diagnostics;
using System.Text;

namespace LoraBridge.Models.Tests;

/// <summary>Issue 17: one broken or hostile file in a folder costs that file an error entry, never the whole scan.</summary>
public sealed class HostileFileTests : IDisposable
{
    private readonly TempWebUi _w = new();

    public void Dispose() => _w.Dispose();

    private const string GoodTensor = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    public static TheoryData<string, byte[], string> HostileHeaders => new()
    {
        // 0xFF can never appear in UTF-8; here inside a metadata value, where the JSON reader would not look at it.
        { "bad_utf8", Concat("{\"__metadata__\":{\"k\":\"a", [0xFF], "\"}," + GoodTensor + "}"), "header is not valid UTF-8 (byte 31 of the file)" },
        { "lone_surrogate", Encoding.ASCII.GetBytes("{\"__metadata__\":{\"k\":\"\\ud800\"}," + GoodTensor + "}"), "escaped lone surrogate" },
        { "surrogate_key", Encoding.ASCII.GetBytes("{\"\\udc00x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "escaped lone surrogate" },
        { "deep", Encoding.ASCII.GetBytes("{\"__metadata__\":" + new string('[', 200_000) + new string(']', 200_000) + "}"), "header is not valid JSON" },
    };

    private static byte[] Concat(string a, byte[] b, string c) => [.. Encoding.ASCII.GetBytes(a), .. b, .. Encoding.ASCII.GetBytes(c)];

    [Theory]
    [MemberData(nameof(HostileHeaders))]
    public void HostileHeaderIsAnErrorNamingTheFile(string name, byte[] header, string expected)
    {
        var path = Path.Combine(_w.Lora, name + ".safetensors");
        File.WriteAllBytes(path, St.Raw(header, new byte[8]));
        var e = Assert.Throws<ModelFileException>(() => SafetensorsHeader.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Theory]
    [MemberData(nameof(HostileHeaders))]
    public void CatalogListsTheBrokenFileAndTheGoodOneStillWorks(string name, byte[] header, string expected)
    {
        St.Lora(Path.Combine(_w.Lora, "good.safetensors"));
        File.WriteAllBytes(Path.Combine(_w.Lora, name + ".safetensors"), St.Raw(header, new byte[8]));
        File.WriteAllBytes(Path.Combine(_w.Checkpoints, name + ".safetensors"), St.Raw(header, new byte[8]));
        var c = _w.Catalog();

        Assert.Equal(2, c.Loras.Count);
        var bad = Assert.Single(c.Loras, e => e.Name == name);
        Assert.Contains(expected, bad.Error);
        Assert.Contains(name + ".safetensors", bad.Error);
        Assert.Equal("error", bad.NetworkType);
        var good = c.Find("good");
        Assert.Null(good.Error);
        Assert.Equal("lora", good.NetworkType);

        var rows = LoraReports.List(c, withHashes: true);
        Assert.Contains(rows, r => r.Name == name && r.Error!.Contains(expected, StringComparison.Ordinal));
        Assert.Contains("error: " + bad.Error, LoraReports.FormatTable(rows, c.Options.EffectiveLoraDirs));

        var ckpt = Assert.Single(c.Checkpoints);
        Assert.Contains(expected, ckpt.Error);
    }

    [Fact]
    public void SymlinkLoopsAreEnteredOnce()
    {
        var sub = Path.Combine(_w.Lora, "sub");
        Directory.CreateDirectory(sub);
        St.Lora(Path.Combine(sub, "inner.safetensors"));
        Directory.CreateSymbolicLink(Path.Combine(sub, "loop"), sub);          // sub/loop -> sub
        Directory.CreateSymbolicLink(Path.Combine(sub, "up"), _w.Lora);        // sub/up -> the root
        Directory.CreateSymbolicLink(Path.Combine(_w.Lora, "alias"), sub);     // a second name for sub

        var files = FileWalk.Files(_w.Lora, LoraCatalog.LoraExtensions).ToList();
        var inner = Assert.Single(files);
        Assert.EndsWith("inner.safetensors", inner);
        Assert.Single(_w.Catalog().Loras);
    }

    [Fact]
    public void DepthIsBounded()
    {
        var dir = _w.Lora;
        for (int i = 0; i < FileWalk.MaxDepth + 3; i++) dir = Path.Combine(dir, "d");
        Directory.CreateDirectory(dir);
        St.Lora(Path.Combine(dir, "deep.safetensors"));
        St.Lora(Path.Combine(_w.Lora, "top.safetensors"));
        var names = FileWalk.Files(_w.Lora, LoraCatalog.LoraExtensions).Select(Path.GetFileName).ToList();
        Assert.Equal(["top.safetensors"], names);
    }

    [Fact]
    public async Task FifosAndDanglingLinksAreSkipped()
    {
        if (!OperatingSystem.IsLinux()) return;
        St.Lora(Path.Combine(_w.Lora, "good.safetensors"));
        var fifo = Path.Combine(_w.Lora, "pipe.safetensors");
        using (var p = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
        {
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }
        File.CreateSymbolicLink(Path.Combine(_w.Lora, "dangling.safetensors"), Path.Combine(_w.Root, "nowhere.safetensors"));
        File.CreateSymbolicLink(Path.Combine(_w.Checkpoints, "pipe.ckpt"), fifo);

        // Opening the FIFO would block this thread forever; the walk must not even try.
        var scan = Task.Run(() => _w.Catalog().Loras.Select(e => e.Name).ToList());
        var names = await scan.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(["good"], names);
        Assert.Empty(_w.Catalog().Checkpoints);
    }
}
