namespace LoraBridge.Python.Tests;

/// <summary>
/// The one embedded interpreter of this test process (CPython and torch initialize once per process).
/// It boots from a `--system-site-packages` venv holding a `.pth` file, so the tests also prove that
/// venvs and .pth files work when embedded.
/// </summary>
public sealed class PythonFixture : IDisposable
{
    public const int TorchThreads = 3;
    public const string PthModule = "lorabridge_pth_probe";

    public string TempDir { get; } = TestPython.TempDir("runtime");
    public string VenvDir { get; }
    public string VenvPython { get; }
    public DiscoveryReport Report { get; }
    public PythonRuntime Runtime { get; }
    public PythonBridge Bridge { get; }

    /// <summary>OMP_WAIT_POLICY of this process before the runtime booted (null: unset, so the runtime chose).</summary>
    public string? WaitPolicyBeforeBoot { get; } = Environment.GetEnvironmentVariable(PythonRuntime.OmpWaitPolicyVariable);

    public PythonFixture()
    {
        VenvDir = Path.Combine(TempDir, "venv");
        VenvPython = TestPython.CreateVenv(VenvDir, systemSitePackages: true);
        var options = new PythonRuntimeOptions { Executable = VenvPython, TorchThreads = TorchThreads };
        Report = new PythonDiscovery(options).DiscoverAsync().GetAwaiter().GetResult();
        var extra = Directory.CreateDirectory(Path.Combine(TempDir, "pth-target")).FullName;
        File.WriteAllText(Path.Combine(extra, PthModule + ".py"), "VALUE = 'seen through a .pth file'\n");
        File.WriteAllText(Path.Combine(Report.Winner!.Probe!.SitePackages[0], "lorabridge_test.pth"), extra + "\n");
        Runtime = PythonRuntime.Start(Report, options);
        Bridge = new PythonBridge(Runtime);
    }

    public void Dispose()
    {
        Runtime.Dispose();
        Directory.Delete(TempDir, recursive: true);
    }
}

[CollectionDefinition("python")]
public sealed class PythonCollection : ICollectionFixture<PythonFixture>;
