using LoraBridge.Python;

namespace LoraBridge.Engine.Tests;

/// <summary>
/// The one embedded Python of this test process (CPython and torch initialize once per process) and one
/// <see cref="GenerationWorkspace"/> on the built-in demo model, created in a temporary data folder. Every
/// end-to-end test shares them, as a CLI process shares its model between jobs.
/// </summary>
public sealed class EndToEndFixture : IDisposable
{
    /// <summary>The tests' interpreter (<see cref="TestPython.Executable"/>): Debian's has torch; the <c>python3</c> first on PATH may not.</summary>
    public static string SystemPython => TestPython.Executable;

    public string TempDir { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-e2e-{Guid.NewGuid():N}")).FullName;
    public PythonRuntime Runtime { get; }
    public PythonBridge Bridge { get; }
    public GenerationWorkspace Workspace { get; }
    public CheckpointContext Checkpoint { get; }

    /// <summary>Digest of the demo model's weights right after its first load, before any network touched it.</summary>
    public string BaseDigest { get; }

    public EndToEndFixture()
    {
        // PackageDir stays null: PythonRuntime finds python/lorabridge in the repository above bin/.
        Runtime = PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = SystemPython, TorchThreads = 2 }).GetAwaiter().GetResult();
        Bridge = new PythonBridge(Runtime);
        Workspace = new GenerationWorkspace(new WorkspaceSettings { DataDir = Path.Combine(TempDir, "data") }, Bridge);
        Checkpoint = Workspace.PrepareAsync(CancellationToken.None).GetAwaiter().GetResult();
        // The digest needs a loaded checkpoint; the engine then finds it loaded and keeps it.
        Assert.True(Bridge.LoadCheckpointAsync(Checkpoint.Path).GetAwaiter().GetResult());
        BaseDigest = Bridge.GetWeightsDigestAsync().GetAwaiter().GetResult();
    }

    /// <summary>A fresh, not yet existing output folder.</summary>
    public string NewOutputDir() => Path.Combine(TempDir, "out-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Runtime.Dispose();
        Directory.Delete(TempDir, recursive: true);
    }
}

[CollectionDefinition("end-to-end")]
public sealed class EndToEndCollection : ICollectionFixture<EndToEndFixture>;
