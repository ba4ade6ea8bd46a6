using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Extensions.Tests;

/// <summary>The process's one embedded interpreter (CPython initializes once per process): Debian's Python with torch.</summary>
public sealed class PythonHostFixture : IDisposable
{
    public PythonRuntime Runtime { get; } =
        PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = TestPython.Executable, TorchThreads = 1 }).GetAwaiter().GetResult();

    public void Dispose() => Runtime.Dispose();
}

public sealed class PythonHostTests(PythonHostFixture f) : IClassFixture<PythonHostFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lb-ext-py").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private ExtensionHost Host() => new(Path.Combine(_dir, "data"), _ => null, _ => { }, () => new PythonBridge(f.Runtime));

    [Fact]
    public async Task RunsCodeWithStringInputsAndReturnsStrOfResult()
    {
        var result = await Host().RunPythonAsync("""
            import torch
            result = float(torch.tensor([float(a), float(b)]).sum())
            """, new Dictionary<string, string> { ["a"] = "1.5", ["b"] = "2" });
        Assert.Equal("3.5", result);
    }

    [Fact]
    public async Task NoResultVariableGivesNullAndSnippetsDoNotShareGlobals()
    {
        var host = Host();
        Assert.Null(await host.RunPythonAsync("x = 41"));
        var ex = await Assert.ThrowsAsync<PythonCallException>(() => host.RunPythonAsync("result = x + 1"));
        Assert.Equal("NameError", ex.PythonType);
        Assert.Contains("'x'", ex.PythonMessage);
    }

    [Fact]
    public async Task WithoutPythonTheHostSaysSo()
    {
        var host = new ExtensionHost(Path.Combine(_dir, "data"), _ => null, _ => { }, () => null);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => host.RunPythonAsync("result = 1"));
        Assert.Contains("no Python runtime", ex.Message);
    }

    [Fact]
    public async Task LoadedExtensionCanCallPython()
    {
        File.WriteAllText(Path.Combine(_dir, "Caps.cs"), """
            public sealed class Caps : ILoraBridgeExtension
            {
                private IExtensionHost _host = null!;
                public string Name => "Caps";
                public string Description => "title-cases the prompt in Python";
                public void Initialize(IExtensionHost host) => _host = host;
                public async ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) =>
                    r with { Prompt = await _host.RunPythonAsync("result = prompt.title()", new Dictionary<string, string> { ["prompt"] = r.Prompt }, ct) ?? r.Prompt };
            }
            """);
        using var set = ExtensionLoader.Load([_dir], Host());
        var request = await set.BeforeJobAsync(new GenerationRequest { Prompt = "a red fox", OutputDir = _dir }, default);
        Assert.Equal("A Red Fox", request.Prompt);
    }
}
