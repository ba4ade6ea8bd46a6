using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Extensions.Tests;

/// <summary>
/// The process's one embedded interpreter (CPython initializes once per process): Debian's Python with torch, and a
/// generation workspace on the built-in demo model in a temporary data folder, made on first use.
/// </summary>
public sealed class PythonHostFixture : IDisposable
{
    private readonly Lazy<GenerationWorkspace> _workspace;

    public PythonHostFixture()
    {
        Bridge = new PythonBridge(Runtime);
        _workspace = new(() =>
        {
            var workspace = new GenerationWorkspace(new WorkspaceSettings { DataDir = Path.Combine(TempDir, "data") }, Bridge);
            workspace.PrepareAsync(CancellationToken.None).GetAwaiter().GetResult();
            return workspace;
        });
    }

    public PythonRuntime Runtime { get; } =
        PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = TestPython.Executable, TorchThreads = 2 }).GetAwaiter().GetResult();

    public PythonBridge Bridge { get; }

    public string TempDir { get; } = Directory.CreateTempSubdirectory("lb-ext-python").FullName;

    /// <summary>The demo-model workspace (its engine keeps the model between tests, as a CLI process does between jobs).</summary>
    public GenerationWorkspace Workspace => _workspace.Value;

    /// <summary>
    /// A workspace on the SDXL demo model (<c>lorabridge-demo-xl</c>) in the same data folder and Python session (its
    /// engine loads its checkpoint for each job, as after switching models in the TUI).
    /// </summary>
    public GenerationWorkspace XlWorkspace => _xlWorkspace ??= new GenerationWorkspace(Workspace.Sources.Settings with { Checkpoint = DemoCheckpoints.Sdxl }, Bridge);

    private GenerationWorkspace? _xlWorkspace;

    public void Dispose()
    {
        Runtime.Dispose();
        Directory.Delete(TempDir, recursive: true);
    }
}

[CollectionDefinition("python")]
public sealed class PythonCollection : ICollectionFixture<PythonHostFixture>;

[Collection("python")]
public sealed class PythonHostTests(PythonHostFixture f) : IDisposable
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
