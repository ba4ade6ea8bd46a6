using System.Text.Json;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Engine.Tests;

// UpscalerNames lists upscalers without starting Python (TUI, serve listings); the names must be the ones
// python/lorabridge/upscaler.py resolves, so the C# copy of the rule is checked against the Python one on the same tree.
public sealed class UpscalerNamesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("lb-upscalers-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Touch(params string[] parts)
    {
        var path = Path.Combine([_root, .. parts]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
    }

    [Fact]
    public void NamesAndOrderAreThePythonCatalogs()
    {
        // Two models folders; nested folders, names that sort differently as strings and as path parts ('-' < '/'),
        // upper-case extensions, RealESRGAN display names, and files that are not upscalers.
        Touch("a", "ESRGAN", "4x-UltraSharp.pth");
        Touch("a", "ESRGAN", "x", "b.safetensors");
        Touch("a", "ESRGAN", "x-y.pth");
        Touch("a", "ESRGAN", "Big.PTH");
        Touch("a", "ESRGAN", "notes.txt");
        Touch("a", "RealESRGAN", "RealESRGAN_x4plus.pth");
        Touch("a", "RealESRGAN", "RealESRGAN_x2plus.pt");
        Touch("a", "RealESRGAN", "mine.pth");
        Touch("b", "ESRGAN", "4x_NMKD.pth");
        Directory.CreateDirectory(Path.Combine(_root, "c"));   // a models folder without upscaler folders

        var dirs = new[] { "a", "b", "c" }.Select(d => Path.Combine(_root, d)).ToArray();
        var csharp = UpscalerNames.List(new UpscalerFolders(dirs));
        var python = JsonSerializer.Deserialize<string[]>(TestPython.Run(
            "import json; from lorabridge.upscaler import UpscalerCatalog; "
            + $"print(json.dumps(UpscalerCatalog({JsonSerializer.Serialize(dirs)}).names()))"))!;

        Assert.Equal(python, csharp);
        Assert.Contains("R-ESRGAN 4x+", csharp);
        Assert.DoesNotContain("notes", csharp);
        Assert.Equal(3 + 8, csharp.Count);
    }
}
