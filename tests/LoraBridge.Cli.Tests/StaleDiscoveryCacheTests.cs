using System.Diagnostics;
using LoraBridge.Python;

namespace LoraBridge.Cli.Tests;

/// <summary>
/// A cached verdict that fails at boot never stops the tool: the verdict is dropped, discovery runs again, and the
/// command finishes with the interpreter the fresh probe chose.
/// </summary>
public sealed class StaleDiscoveryCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-stale-{Guid.NewGuid():N}")).FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task CachedWinnerThatCannotImportTorchIsDroppedAndTheCommandStillRuns()
    {
        // python3 on PATH is a venv without torch; the cache (forged, with matching stamps) claims it is usable.
        var venv = Path.Combine(_root, "bare-venv");
        using (var p = Process.Start(new ProcessStartInfo(TestPython.Executable, ["-m", "venv", "--without-pip", venv]) { RedirectStandardError = true })!)
        {
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, "creating a venv failed: " + await p.StandardError.ReadToEndAsync());
        }
        // The venv's own bin/ goes on PATH: a venv is recognised by the pyvenv.cfg next to the folder the binary is run from.
        var bin = Path.Combine(venv, "bin");
        var onPath = Path.Combine(bin, "python3");
        var data = Path.Combine(_root, "data");
        var probe = await PythonDiscovery.ProbeAsync(onPath, TimeSpan.FromSeconds(60));
        Assert.Null(probe.TorchVersion);
        Assert.NotNull(probe.LibPython);
        var cache = new DiscoveryCache(Path.Combine(data, "python-discovery.json"));
        cache.Put(new PythonCandidate(PythonSource.Path, onPath, CandidateStatus.Chosen, null,
            probe with { TorchVersion = "1.13.0", TorchError = null }));
        Assert.True(cache.Save());

        var env = new Dictionary<string, string>
        {
            ["PATH"] = bin + ":/usr/bin:/bin",
            ["LORABRIDGE_DATADIR"] = data,
        };
        var (code, stdout, stderr) = await CliProcess.RunAsync(["python-loop", "--seconds", "0.2", "--torch-threads", "1"], _root, env);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("warning: the cached Python choice failed to start; probing afresh in a new process", stderr);
        Assert.Contains("python loop completed", stdout);
        // The fresh verdicts are stored: the torch-less venv is skipped from now on, the system Python chosen.
        var report = await new PythonDiscovery(new PythonRuntimeOptions { DataDir = data, SearchPath = bin }).GetReportAsync();
        var path = Assert.Single(report.Candidates, c => c.Source == PythonSource.Path);
        Assert.Equal(CandidateStatus.Skipped, path.Status);
        Assert.True(path.FromCache);
        Assert.Equal(PythonSource.System, report.Winner?.Source);
    }
}
