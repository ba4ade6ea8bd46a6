using System.Text.Json;

namespace LoraBridge.Python.Tests;

/// <summary>
/// The verdict cache: unchanged candidates are not probed again; a touched libpython, another torch, a removed
/// interpreter or a broken cache file are noticed. The candidates are wrapper scripts around the system Python that
/// count their runs, carry a fake torch package (so probing is quick) and report a libpython copied into the test
/// folder (so it can be touched without touching the system's).
/// </summary>
public sealed class DiscoveryCacheTests : IDisposable
{
    private readonly string _tmp = TestPython.TempDir("discovery-cache");
    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static readonly Lazy<PythonProbe> SystemProbe =
        new(() => PythonDiscovery.ProbeAsync(TestPython.System, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult());

    private string CacheFile => Path.Combine(_tmp, "data", "python-discovery.json");

    private sealed record Candidate(string Exe, string Counter, string TorchDir, string LibPython);

    /// <summary>A python3 wrapper: counts its runs, puts a fake torch first on sys.path, and reports a libpython copy.</summary>
    private Candidate MakeCandidate(string name, string torchVersion = "9.1.0")
    {
        var dir = Directory.CreateDirectory(Path.Combine(_tmp, name)).FullName;
        var lib = Directory.CreateDirectory(Path.Combine(dir, "lib")).FullName;
        var system = SystemProbe.Value;
        var libCopy = Path.Combine(lib, Path.GetFileName(system.LibPython!));
        File.Copy(system.LibPython!, libCopy);
        var torchDir = WriteFakeTorch(Path.Combine(dir, "site"), torchVersion);
        File.WriteAllText(Path.Combine(dir, "_sysconfigdata_lorabridge_cachetest.py"), $$"""
import importlib, sys
_real = importlib.import_module(f"_sysconfigdata_{sys.abiflags}_{sys.platform}_{getattr(sys.implementation, '_multiarch', '')}")
build_time_vars = dict(_real.build_time_vars, LIBDIR="{{lib}}", LIBPL="{{lib}}")
""");
        var counter = Path.Combine(dir, "runs");
        var exe = Path.Combine(dir, "python3");
        File.WriteAllText(exe, $"""
#!/bin/sh
echo run >> "{counter}"
export _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata_lorabridge_cachetest
export PYTHONPATH="{Path.Combine(dir, "site")}:{dir}"
exec {TestPython.System} "$@"

""");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(exe, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new Candidate(exe, counter, torchDir, libCopy);
    }

    private static string WriteFakeTorch(string site, string version)
    {
        var torch = Directory.CreateDirectory(Path.Combine(site, "torch")).FullName;
        File.WriteAllText(Path.Combine(torch, "__init__.py"), $"__version__ = \"{version}\"\n");
        return torch;
    }

    private static int Runs(Candidate c) => File.Exists(c.Counter) ? File.ReadAllLines(c.Counter).Length : 0;

    private PythonDiscovery Discovery(string exe) =>
        new(new PythonRuntimeOptions { Executable = exe, DataDir = Path.Combine(_tmp, "data") });

    private static void Touch(string path, int secondsLater) =>
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddSeconds(secondsLater));

    [Fact]
    public async Task UnchangedCandidateIsNotProbedAgainAndGetsTheSameVerdict()
    {
        var c = MakeCandidate("same");

        var first = await Discovery(c.Exe).GetReportAsync();
        Assert.Equal(1, Runs(c));
        Assert.False(first.UsedCache);
        Assert.True(File.Exists(CacheFile));

        var second = await Discovery(c.Exe).GetReportAsync();

        Assert.Equal(1, Runs(c)); // no subprocess ran
        Assert.True(second.UsedCache);
        var w = Assert.IsType<PythonCandidate>(second.Winner);
        Assert.True(w.FromCache);
        Assert.Equal(first.Winner!.Probe! with { SitePackages = [] }, w.Probe! with { SitePackages = [] });
        Assert.Equal(first.Winner.Probe!.SitePackages, w.Probe!.SitePackages);
        Assert.Equal("9.1.0", w.Probe.TorchVersion);
        Assert.Equal(c.TorchDir, w.Probe.TorchDir);
        Assert.Equal(c.LibPython, w.Probe.LibPython);
        Assert.Contains("[cached verdict]", second.Describe());
    }

    [Fact]
    public async Task TouchedLibpythonIsNoticedAndReprobed()
    {
        var c = MakeCandidate("touched-lib");
        await Discovery(c.Exe).GetReportAsync();
        Touch(c.LibPython, 5);

        var report = await Discovery(c.Exe).GetReportAsync();

        Assert.Equal(2, Runs(c));
        Assert.False(report.UsedCache);
        Assert.Equal($"changed: {c.LibPython}", report.CacheMisses[c.Exe]);
        // The new verdict is stored: a third start uses it.
        Assert.True((await Discovery(c.Exe).GetReportAsync()).UsedCache);
        Assert.Equal(2, Runs(c));
    }

    [Fact]
    public async Task AnotherTorchIsNoticedAndItsVersionReported()
    {
        var c = MakeCandidate("other-torch");
        Assert.Equal("9.1.0", (await Discovery(c.Exe).GetReportAsync()).Winner!.Probe!.TorchVersion);

        // pip replaces the package folder when it installs another torch.
        Directory.Delete(c.TorchDir, recursive: true);
        Thread.Sleep(20); // a new folder's time must differ from the old one's even on coarse file systems
        WriteFakeTorch(Path.GetDirectoryName(c.TorchDir)!, "9.2.0");
        Touch(c.TorchDir, 5);

        var report = await Discovery(c.Exe).GetReportAsync();

        Assert.Equal(2, Runs(c));
        Assert.False(report.UsedCache);
        Assert.Equal("9.2.0", report.Winner!.Probe!.TorchVersion);
    }

    [Fact]
    public async Task RemovedTorchIsNoticedAndTheNextOneOnSysPathReported()
    {
        var c = MakeCandidate("torch-removed");
        await Discovery(c.Exe).GetReportAsync();
        Directory.Delete(c.TorchDir, recursive: true);

        var report = await Discovery(c.Exe).GetReportAsync();

        Assert.Equal(2, Runs(c));
        Assert.False(report.UsedCache);
        // With the fake one gone, the system's torch is the one that imports now.
        Assert.NotEqual(c.TorchDir, report.Winner!.Probe!.TorchDir);
        Assert.NotEqual("9.1.0", report.Winner.Probe.TorchVersion);
    }

    [Fact]
    public async Task RemovedInterpreterIsNoticed()
    {
        var c = MakeCandidate("removed");
        await Discovery(c.Exe).GetReportAsync();
        File.Delete(c.Exe);

        var report = await Discovery(c.Exe).GetReportAsync();

        Assert.Null(report.Winner);
        Assert.False(report.UsedCache);
        Assert.Equal($"not found: {c.Exe}", report.Candidates[0].Reason);
    }

    [Theory]
    [InlineData("{ this is not json")]
    [InlineData("{\"format\": 1, \"probe_script\": 7, \"entries\": \"x\"}")]
    [InlineData("")]
    public async Task GarbageCacheFileIsIgnoredAndRewritten(string garbage)
    {
        var c = MakeCandidate("garbage");
        Directory.CreateDirectory(Path.GetDirectoryName(CacheFile)!);
        File.WriteAllText(CacheFile, garbage);

        var discovery = Discovery(c.Exe);
        var report = await discovery.GetReportAsync();

        Assert.Equal(c.Exe, report.Winner?.Path);
        Assert.Equal(1, Runs(c));
        Assert.StartsWith("unreadable cache file", discovery.Cache!.LoadProblem);
        using var doc = JsonDocument.Parse(File.ReadAllText(CacheFile)); // valid again
        Assert.Equal(c.Exe, doc.RootElement.GetProperty("entries")[0].GetProperty("path").GetString());
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(CacheFile)!, "*.tmp")); // the temp file was moved, not left
        Assert.True((await Discovery(c.Exe).GetReportAsync()).UsedCache);
    }

    [Fact]
    public async Task CacheFromAnotherProbeScriptIsIgnored()
    {
        var c = MakeCandidate("old-probe");
        await Discovery(c.Exe).GetReportAsync();
        File.WriteAllText(CacheFile, File.ReadAllText(CacheFile).Replace(DiscoveryCache.ProbeScriptHash, "0123456789abcdef", StringComparison.Ordinal));

        var discovery = Discovery(c.Exe);
        var report = await discovery.GetReportAsync();

        Assert.False(report.UsedCache);
        Assert.Equal(2, Runs(c));
        Assert.Equal("the cache was written by another version of the probe", discovery.Cache!.LoadProblem);
    }

    [Fact]
    public async Task ProbeAfreshIgnoresTheCacheAndSaysWhetherItWasCurrent()
    {
        var c = MakeCandidate("afresh");
        await Discovery(c.Exe).GetReportAsync();

        var current = await Discovery(c.Exe).ProbeAfreshAsync();
        Assert.False(current.UsedCache);
        Assert.Empty(current.CacheMisses);
        Assert.Equal(2, Runs(c));

        Touch(c.LibPython, 5);
        var stale = await Discovery(c.Exe).ProbeAfreshAsync();
        Assert.Equal($"changed: {c.LibPython}", stale.CacheMisses[c.Exe]);
        Assert.Equal(3, Runs(c));
    }

    [Fact]
    public async Task CachedWinnerWhoseLibpythonNoLongerLoadsIsDroppedBeforeBootAndDiscoveryRunsAgain()
    {
        // A cache entry that claims a usable interpreter, with matching stamps, but a libpython that is not a library.
        var c = MakeCandidate("bad-lib");
        File.WriteAllText(Path.Combine(Path.GetDirectoryName(c.TorchDir)!, "torch", "__init__.py"), "raise ImportError('torch is gone')\n");
        var report = await Discovery(c.Exe).GetReportAsync();
        Assert.Null(report.Winner); // the truth: torch does not import
        var garbageLib = Path.Combine(_tmp, "libpython-garbage.so");
        File.WriteAllText(garbageLib, "not an ELF file");
        var cache = new DiscoveryCache(CacheFile);
        var skipped = report.Candidates[0];
        var forged = skipped with { Status = CandidateStatus.Chosen, Reason = null, Probe = skipped.Probe! with { LibPython = garbageLib, TorchVersion = "9.1.0", TorchError = null } };
        cache.Put(forged);
        Assert.True(cache.Save());
        var discovery = Discovery(c.Exe);
        Assert.True((await discovery.GetReportAsync()).Winner!.FromCache);

        // The provider must not boot the forged winner: it probes again, finds nothing usable and says so.
        using var provider = new PythonRuntimeProvider(Discovery(c.Exe), new PythonRuntimeOptions { Executable = c.Exe });
        var ex = await Assert.ThrowsAsync<PythonRuntimeUnavailableException>(() => provider.GetAsync());

        Assert.Contains("No usable Python found", ex.Message);
        Assert.Contains("torch is gone", ex.Message);
        Assert.False((await Discovery(c.Exe).GetReportAsync()).Candidates[0].Status == CandidateStatus.Chosen); // forged verdict gone
    }
}
